"""The JSON shapes of the seed's models (its ``Serialize``/``Deserialize``).

Input schemas (``New*``) reject unknown fields and wrong types, and check
every bound the database enforces. Read schemas (``*Read``) are what leaves
the package: :class:`UserRead` has no ``password_hash``, prices are
:class:`~decimal.Decimal` and travel in JSON as strings (``"19.99"``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
)

from shopdb.errors import InvalidInput
from shopdb.limits import (
    EMAIL_MAX,
    EMAIL_PATTERN,
    INT_MAX,
    PASSWORD_MAX,
    PASSWORD_MIN,
    PRODUCT_NAME_MAX,
    USERNAME_MAX,
)


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and UTF-8 cannot encode a lone surrogate.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (it holds a lone surrogate)") from None
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _no_at_sign(value: str) -> str:
    # Logins are a username or an email; an '@' in a username would make
    # "bob@x.io" ambiguous.
    if "@" in value:
        raise ValueError("must not contain '@'")
    return value


def _money(value: object) -> object:
    # A float never touches a price: 0.1 + 0.2 is not 0.3 in binary.
    if isinstance(value, bool | float):
        raise ValueError(  # noqa: TRY004 (pydantic reports ValueError as a field error)
            "must be a Decimal, an integer or a string such as '19.99' "
            "(a float cannot hold money exactly)"
        )
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise ValueError("is not a number") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]
Username = Annotated[
    str,
    Field(min_length=1, max_length=USERNAME_MAX),
    AfterValidator(_storable),
    AfterValidator(_not_blank),
    AfterValidator(_no_at_sign),
]
Email = Annotated[
    str, Field(max_length=EMAIL_MAX, pattern=EMAIL_PATTERN), AfterValidator(_storable)
]
ProductName = Annotated[
    str,
    Field(min_length=1, max_length=PRODUCT_NAME_MAX),
    AfterValidator(_storable),
    AfterValidator(_not_blank),
]
Money = Annotated[Decimal, BeforeValidator(_money), Field(ge=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=INT_MAX)]
Quantity = Annotated[int, Field(ge=1, le=INT_MAX)]
Id = Annotated[int, Field(ge=1, le=INT_MAX)]
Password = Annotated[SecretStr, Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]


class _Input(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid", frozen=True)


class NewUser(_Input):
    """A user to register. The password is hashed on insert and never serialized."""

    username: Username
    email: Email
    password: Password

    def insert_values(self) -> dict[str, Any]:
        """Column values for ``users``, with the password hashed (argon2id)."""
        from shopdb.passwords import hash_password

        return {
            "username": self.username,
            "email": self.email,
            "password_hash": hash_password(self.password.get_secret_value()),
        }


class NewProduct(_Input):
    """A product to add to the catalog."""

    name: ProductName
    description: Text | None = None
    price: Money
    inventory_count: Count

    def insert_values(self) -> dict[str, Any]:
        """Column values for ``products``."""
        return self.model_dump()


class NewCart(_Input):
    """A cart to open for a user."""

    user_id: Id

    def insert_values(self) -> dict[str, Any]:
        """Column values for ``carts``."""
        return self.model_dump()


class NewCartItem(_Input):
    """A line to put in a cart."""

    cart_id: Id
    product_id: Id
    quantity: Quantity

    def insert_values(self) -> dict[str, Any]:
        """Column values for ``cart_items``."""
        return self.model_dump()


class UserRead(_Read):
    """A user as anyone may see it: no password hash."""

    id: int
    username: str
    email: str
    created_at: datetime


class ProductRead(_Read):
    """A product; ``price`` is exact and serializes as a string."""

    id: int
    name: str
    description: str | None
    price: Decimal
    inventory_count: int


class CartRead(_Read):
    """A cart without its lines."""

    id: int
    user_id: int
    created_at: datetime


class CartItemRead(_Read):
    """One line of a cart."""

    id: int
    cart_id: int
    product_id: int
    quantity: int


class CartLine(_Read):
    """One product in a cart view or receipt, with its price and line total."""

    product_id: int
    name: str
    unit_price: Decimal
    quantity: int
    line_total: Decimal


class CartView(_Read):
    """A cart with its lines (ordered by product id) and its total."""

    id: int
    user_id: int
    items: list[CartLine]
    total: Decimal


class Receipt(_Read):
    """What a checkout sold: the lines at the prices they were sold at, and the total."""

    cart_id: int
    items: list[CartLine]
    total: Decimal


class ProductChanges(_Input):
    """The fields ``update_product`` may change; only those given are changed."""

    name: ProductName | None = None
    description: Text | None = None
    price: Money | None = None
    inventory_count: Count | None = None


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: object) -> M:
    """Validate ``data`` (a mapping, or JSON text/bytes) as ``model``.

    Raises :class:`~shopdb.errors.InvalidInput` naming the first bad field.
    """
    try:
        if isinstance(data, str | bytes):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc) from exc


def invalid_input(exc: ValidationError) -> InvalidInput:
    """The first problem of a pydantic error as an :class:`InvalidInput`."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"]) or exc.title
    reason = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        reason = "is not a known field"
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return InvalidInput(field, reason)
