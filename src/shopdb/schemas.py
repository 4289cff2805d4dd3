"""The JSON shapes of the seed's models (its ``Serialize``/``Deserialize``), and the orders'.

Input schemas (``New*``, :class:`ProductChanges`, and the request bodies
:class:`Credentials`, :class:`NewLine`, :class:`LineQuantity`) reject unknown
fields and wrong types (no ``true`` or ``"1"`` for a number) and check every
bound the database enforces; their JSON Schemas say exactly what they accept
(tests check both ways). Every list the Store returns is a :class:`Page`. Read schemas (``*Read``,
views, orders) are what leaves the package: :class:`UserRead` has no
``password_hash``; money is a :class:`~decimal.Decimal` that travels in JSON
as a string with exactly two decimals (``"19.99"``, ``"3.00"``); times are
instants in UTC with their offset (``"2026-11-27T10:15:00.123456Z"``).

Prices: at most two decimal places, below 1,000,000,000 (see
:mod:`shopdb.limits`). In JSON a price is a string matching
:data:`~shopdb.limits.PRICE_PATTERN`; Python code may also pass a
``Decimal``. Usernames and emails are normalized to Unicode NFKC before they
are checked, stored or compared; usernames then follow PRECIS
(UsernameCaseMapped) and look-alikes are one account (:mod:`shopdb.names`).
Names, emails and descriptions refuse control, invisible and bidi characters
as :mod:`shopdb.names` says. Passwords are 8 to 1024 characters; a description at most 10,000.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, SupportsIndex, TypeAlias, TypeVar, overload

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    SecretStr,
    ValidationError,
    WithJsonSchema,
)

from shopdb import limits, names
from shopdb.errors import InvalidInput
from shopdb.limits import (
    AMOUNT_PATTERN,
    CONTROL_BUT_TAB_NEWLINE,
    DESCRIPTION_MAX,
    EMAIL_MAX,
    EMAIL_SHAPE,
    INT_MAX,
    LOGIN_MAX,
    NAME_FORBIDDEN,
    NAME_INVISIBLE,
    PASSWORD_MAX,
    PASSWORD_MIN,
    PRICE_PATTERN,
    PRICE_SCALE,
    PRODUCT_NAME_MAX,
    TOTAL_PATTERN,
    USERNAME_FORBIDDEN,
    USERNAME_MAX,
)

# What the JSON Schemas say of names (the code says more: see the README's
# "Models and JSON" on what a pattern cannot express, PRECIS among it).
_USERNAME_PATTERN = rf"^[^{USERNAME_FORBIDDEN}]+$"
_NAME_PATTERN = rf"^[^{NAME_FORBIDDEN}]*[^{NAME_FORBIDDEN}{NAME_INVISIBLE}][^{NAME_FORBIDDEN}]*$"
_DESCRIPTION_PATTERN = rf"^[^{CONTROL_BUT_TAB_NEWLINE}]*$"
_PASSWORD_PATTERN = r"^[^\u0000]*$"  # noqa: S105 (a pattern, not a password)
_CENT = Decimal(1).scaleb(-PRICE_SCALE)


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and UTF-8 cannot encode a lone surrogate.
    problem = limits.text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _nfkc(value: object) -> object:
    # One account per name however it is spelled: "Zoë" in NFD and in NFC,
    # full-width letters and ligatures all become their compatibility form.
    if isinstance(value, str):
        try:
            return unicodedata.normalize("NFKC", _storable(value))
        except ValueError:
            return value  # left for _storable to refuse, with its own reason
    return value


def _refusing(problem: Callable[[str], str | None]) -> AfterValidator:
    """A validator that raises what ``problem`` finds wrong (one of :mod:`shopdb.names`)."""

    def check(value: str) -> str:
        found = problem(value)
        if found is not None:
            raise ValueError(found)
        return value

    return AfterValidator(check)


def _price(value: object) -> Decimal:
    """A price: a string like "19.99" (JSON), or a Decimal (Python), within the bounds.

    A float never touches a price: 0.1 + 0.2 is not 0.3 in binary
    (:func:`shopdb.limits.price_input_problem`)."""
    problem = limits.price_input_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return Decimal(value).quantize(_CENT)  # type: ignore[arg-type]  # a str or a Decimal


def total(value: object) -> Decimal:
    """A total (checkout's ``expected_total``): a string like ``"19.99"``, a Decimal or an int,
    at least 0, at most two decimals; no float. ``ValueError`` (the reason) otherwise."""
    if type(value) is int:
        value = Decimal(value)
    elif isinstance(value, str):
        if not re.fullmatch(TOTAL_PATTERN, value):
            raise ValueError('must be an amount such as "19.99"')
        value = Decimal(value)
    if not isinstance(value, Decimal):
        raise ValueError('must be a string such as "19.99" (a number could lose cents)')  # noqa: TRY004
    if not (value.is_finite() and 0 <= value < 10**18) or value != value.quantize(_CENT):
        raise ValueError(f"must be an amount of at least 0 with at most {PRICE_SCALE} decimals")
    return value.quantize(_CENT)


def _amount_text(value: Decimal | None) -> str | None:
    """Plain notation, exactly two decimals: ``"3.00"``, never ``"3"`` or ``"1E+2"``.

    (None only as :class:`ProductChanges`' default, which is never sent.)
    """
    return None if value is None else f"{value.quantize(_CENT):f}"


def _instant(value: datetime) -> datetime:
    # The seed's TIMESTAMP columns hold UTC (connections run with TimeZone=UTC):
    # say so on the way out.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: A product description: at most DESCRIPTION_MAX characters, no control characters but
#: tab and newline (shopdb.names).
Description = Annotated[
    str,
    _refusing(limits.description_problem),
    WithJsonSchema(
        {"type": "string", "maxLength": DESCRIPTION_MAX, "pattern": _DESCRIPTION_PATTERN},
        mode="validation",
    ),
    WithJsonSchema({"type": "string", "maxLength": DESCRIPTION_MAX}, mode="serialization"),
]
#: A username as given; validated, it is the form stored (PRECIS UsernameCaseMapped).
Username = Annotated[
    str,
    BeforeValidator(_nfkc),
    _refusing(limits.username_problem),
    AfterValidator(names.prepare_username),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": USERNAME_MAX,
            "pattern": _USERNAME_PATTERN,
            "description": "PRECIS UsernameCaseMapped (RFC 8265): letters, digits and "
            "ASCII punctuation but '@', stored in lower case; look-alikes of a "
            "taken name are taken",
        },
        mode="validation",
    ),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": USERNAME_MAX}, mode="serialization"
    ),
]
Email = Annotated[
    str,
    BeforeValidator(_nfkc),
    _refusing(limits.email_problem),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": EMAIL_MAX, "pattern": EMAIL_SHAPE},
        mode="validation",
    ),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": EMAIL_MAX}, mode="serialization"
    ),
]
ProductName = Annotated[
    str,
    _refusing(limits.name_problem),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": PRODUCT_NAME_MAX,
            "pattern": _NAME_PATTERN,
        },
        mode="validation",
    ),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": PRODUCT_NAME_MAX}, mode="serialization"
    ),
]
#: A price given to shopdb (see the module docs).
Price = Annotated[
    Decimal,
    PlainValidator(_price),
    PlainSerializer(_amount_text, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "pattern": PRICE_PATTERN, "examples": ["19.99"]}, mode="validation"
    ),
    WithJsonSchema(
        {"type": "string", "pattern": AMOUNT_PATTERN, "examples": ["19.99"]},
        mode="serialization",
    ),
]
#: A total given to shopdb: checkout's ``expected_total`` (see :func:`total`).
Total = Annotated[
    Decimal,
    PlainValidator(total),
    PlainSerializer(_amount_text, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "pattern": TOTAL_PATTERN, "examples": ["19.99"]}, mode="validation"
    ),
    WithJsonSchema(
        {"type": "string", "pattern": AMOUNT_PATTERN, "examples": ["19.99"]},
        mode="serialization",
    ),
]
#: An amount shopdb gives back: a Decimal, JSON text with exactly two decimals.
Amount = Annotated[
    Decimal,
    PlainSerializer(_amount_text, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "pattern": AMOUNT_PATTERN, "examples": ["19.99"]},
        mode="serialization",
    ),
]
#: An instant, always in UTC with its offset.
Instant = Annotated[datetime, AfterValidator(_instant)]


def _whole(value: object) -> object:
    # JSON Schema's "integer" is any number without a fraction, 3.0 included:
    # take those as the integers they are, and nothing else (no "3", no true).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _counted(least: int) -> tuple[AfterValidator, WithJsonSchema]:
    """An int from ``least`` to INT_MAX, by :func:`shopdb.limits.count_problem`."""
    refuse = _refusing(lambda value: limits.count_problem(value, least))
    schema = {"type": "integer", "minimum": least, "maximum": INT_MAX}
    return refuse, WithJsonSchema(schema)


Count = Annotated[int, *_counted(0), BeforeValidator(_whole)]
Quantity = Annotated[int, *_counted(1), BeforeValidator(_whole)]
Id = Annotated[int, *_counted(1), BeforeValidator(_whole)]


def _hashable(value: SecretStr) -> SecretStr:
    # argon2 hashes the password's UTF-8 bytes: a lone surrogate has none.
    _storable(value.get_secret_value())
    return value


Password = Annotated[
    SecretStr,
    Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX),
    AfterValidator(_hashable),
    WithJsonSchema(
        {
            "type": "string",
            "format": "password",
            "writeOnly": True,
            "minLength": PASSWORD_MIN,
            "maxLength": PASSWORD_MAX,
            "pattern": _PASSWORD_PATTERN,
        },
        mode="validation",
    ),
]
#: An order's status and a user's role: the lists of :mod:`shopdb.limits`.
OrderStatus: TypeAlias = limits.OrderStatus
UserRole: TypeAlias = limits.UserRole
CartStatus = Literal["open", "closed"]


class _Input(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid", frozen=True)


class NewUser(_Input):
    """A user to register. The password is hashed on insert and never serialized.

    ``username``: PRECIS UsernameCaseMapped (RFC 8265) after NFKC, at most 64
    characters, no '@' (a login is a username or an email); it becomes the
    prepared form (lower case), and a look-alike of a taken name is taken
    (:mod:`shopdb.names`). ``email``: looks like ``name@example.com``, at most
    254 characters, NFKC, no control or invisible characters. ``password``: 8
    to 1024 characters. No ``role``: every user registers as a customer;
    staff are made by ``shopdb user staff NAME`` or ``Store.set_role``.
    """

    username: Username
    email: Email
    password: Password

    def insert_values(self) -> dict[str, Any]:
        """Column values for ``users``, with the password hashed (argon2id)."""
        from shopdb.passwords import hash_password

        return {
            "username": self.username,
            "username_key": names.username_key(self.username),
            "email": self.email,
            "password_hash": hash_password(self.password.get_secret_value()),
        }


class NewProduct(_Input):
    """A product to add to the catalog."""

    name: ProductName
    description: Description | None = None
    price: Price
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


def _no_default(schema: dict[str, Any]) -> None:
    # A field left out is unchanged; ``"default": null`` would say null is fine.
    for field in schema.get("properties", {}).values():
        field.pop("default", None)


class ProductChanges(_Input):
    """The fields ``update_product`` may change; only those given are changed.

    ``name``, ``price`` and ``inventory_count`` may be left out but not null;
    ``description`` may be null (to clear it).
    """

    model_config = ConfigDict(json_schema_extra=_no_default)

    name: ProductName = None  # type: ignore[assignment]
    description: Description | None = None
    price: Price = None  # type: ignore[assignment]
    inventory_count: Count = None  # type: ignore[assignment]

    def given(self) -> dict[str, Any]:
        """The fields the caller sent, and only those, in declaration order.

        Pass the model itself to ``Store.update_product(product_id, changes)``,
        or this; never ``model_dump()``, where a field left out reads as None
        (``description: None`` would clear the description).
        """
        sent = self.model_fields_set
        return {field: getattr(self, field) for field in type(self).model_fields if field in sent}


#: A login as given to :class:`Credentials`: a username or an email, not yet normalized
#: (``Store.authenticate`` finds the account as registration compared it).
Login = Annotated[
    str,
    Field(min_length=1, max_length=LOGIN_MAX),
    AfterValidator(_storable),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": LOGIN_MAX,
            "pattern": _PASSWORD_PATTERN,
            "description": "a username or an email address",
        },
        mode="validation",
    ),
]
#: A password as given to sign in: any length a registration could have set, no NUL.
LoginPassword = Annotated[
    SecretStr,
    Field(min_length=1, max_length=PASSWORD_MAX),
    AfterValidator(_hashable),
    WithJsonSchema(
        {
            "type": "string",
            "format": "password",
            "writeOnly": True,
            "minLength": 1,
            "maxLength": PASSWORD_MAX,
            "pattern": _PASSWORD_PATTERN,
        },
        mode="validation",
    ),
]


class Credentials(_Input):
    """A sign-in: ``login`` (a username or an email, any case) and ``password``.

    ``store.authenticate(c.login, c.password.get_secret_value())``. The
    password is a :class:`~pydantic.SecretStr`: it never shows in a repr, a
    log line or ``model_dump_json()``. Its bounds are loose on purpose (1 to
    1024 characters): a wrong password is a failed sign-in (counted by the
    login throttle), not a malformed request.
    """

    login: Login
    password: LoginPassword


class NewLine(_Input):
    """A product to put in the signed-in user's cart: ``Shopper.add(product_id, quantity)``.

    ``quantity`` (default 1) is a whole number from 1 to 2**31 - 1: ``true``,
    ``"1"`` and ``1.5`` are refused, naming the field. It is added to the
    product's line if the cart has one.
    """

    product_id: Id
    quantity: Quantity = 1


class LineQuantity(_Input):
    """How many of a product a cart's line holds: ``Shopper.set_quantity(product_id, quantity)``.

    A whole number from 0 (which removes the line) to 2**31 - 1, as strict as
    :class:`NewLine`'s.
    """

    quantity: Count


class UserRead(_Read):
    """A user as anyone may see it: no password hash; ``role`` is customer or staff."""

    id: int
    username: str
    email: str
    created_at: Instant
    role: UserRole


class ProductRead(_Read):
    """A product; ``price`` is exact and serializes as a string with two decimals."""

    id: int
    name: str
    description: str | None
    price: Amount
    inventory_count: int


class CartRead(_Read):
    """A cart without its lines."""

    id: int
    user_id: int
    created_at: Instant


class CartItemRead(_Read):
    """One line of a cart."""

    id: int
    cart_id: int
    product_id: int
    quantity: int


class CartLine(_Read):
    """One product in a cart view, with its price and line total."""

    product_id: int
    name: str
    unit_price: Amount
    quantity: int
    line_total: Amount


class CartView(_Read):
    """A cart as an endpoint shows it: lines (by product id), total, open or closed."""

    id: int
    user_id: int
    status: CartStatus
    items: list[CartLine]
    total: Amount


class OrderLine(_Read):
    """What one line of an order sold: the product's name and price as they were.

    ``product_id`` is None once the product was deleted; the line stays.
    """

    product_id: int | None
    name: str
    unit_price: Amount
    quantity: int
    line_total: Amount


class Order(_Read):
    """A sale: who, from which cart, when, its status, total and lines."""

    id: int
    user_id: int
    cart_id: int
    status: OrderStatus
    total: Amount
    created_at: Instant
    updated_at: Instant
    items: list[OrderLine]


class OrderSummary(_Read):
    """An order in a list: everything but its lines."""

    id: int
    user_id: int
    cart_id: int
    status: OrderStatus
    total: Amount
    created_at: Instant
    updated_at: Instant


#: What checkout returned before orders existed; it returns the :class:`Order` now.
Receipt = Order

M = TypeVar("M", bound=BaseModel)
Item = TypeVar("Item", bound=BaseModel)


class Page(_Read, Generic[Item]):
    """One page of a list: its ``items``, and ``next``, the cursor of the page after it.

    ``next`` is opaque: pass it back unchanged as ``cursor=`` (with the same
    filters) to get the next page; it is None on the last page. Every list
    method of the Store returns one (``search_products``, ``list_products``,
    ``list_orders``, ``Shopper.orders``), and so may an endpoint: its JSON is
    ``{"items": [...], "next": "..."}``.

    A page reads as the list of its items, so code written for the lists the
    Store used to return keeps working: ``len(page)``, ``page[0]``,
    ``page[-1]``, ``for item in page``, ``if not page``. It is not a list:
    compare ``page.items`` with a list, and use ``model_dump()``, not
    ``dict(page)``, for its fields.
    """

    items: list[Item]
    next: str | None

    def __len__(self) -> int:
        """How many items the page holds."""
        return len(self.items)

    @overload
    def __getitem__(self, index: SupportsIndex) -> Item: ...
    @overload
    def __getitem__(self, index: slice) -> list[Item]: ...
    def __getitem__(self, index: SupportsIndex | slice) -> Item | list[Item]:
        """An item (or a list of them, for a slice), as ``page.items[index]``."""
        return self.items[index]

    def __iter__(self) -> Iterator[Item]:  # type: ignore[override]
        """The items, in order (not the fields, as a pydantic model's iteration would give)."""
        return iter(self.items)


def parse(model: type[M], data: object) -> M:
    """Validate ``data`` (a mapping, or JSON text/bytes) as ``model``.

    Raises :class:`~shopdb.errors.InvalidInput` naming every bad field.
    """
    try:
        if isinstance(data, str | bytes):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc) from exc


def invalid_input(exc: ValidationError) -> InvalidInput:
    """Every problem of a pydantic error, in plain English, as one :class:`InvalidInput`."""
    return InvalidInput.from_errors(exc.errors(include_url=False, include_input=False))
