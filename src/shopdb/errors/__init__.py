"""One error hierarchy for everything shopdb raises, shaped for a web API.

Every database error becomes one of these in :func:`translate`, keyed on
SQLSTATE and constraint name, never on message text. Messages name the field
and the problem in plain English; they never contain a password or a value
JSON cannot carry.

Every error is small and says nothing the caller sent: its text and
:meth:`~ShopError.details` name fields, ids and bounds, never a refused value (a
number, a string, a file's cell), and :class:`InvalidInput` lists at most
:data:`~shopdb.limits.PROBLEMS_MAX` problems and counts the rest, so the answer
to a body of a million bad keys is a few hundred bytes.

Every error has a stable machine-readable :attr:`~ShopError.code`, the
:attr:`~ShopError.http_status` a web layer can answer with as is, JSON-ready
:meth:`~ShopError.details`, and :meth:`~ShopError.problem`: the whole error
as an RFC 9457 problem details object::

    ShopError                       code                  status
    ├── ConfigurationError          configuration_error   500  bad setting or URL
    ├── ConnectionFailed            connection_failed     500  could not talk to PostgreSQL
    │   ├── DatabaseUnavailable     unavailable           503  unreachable, restarting: retryable
    │   │                                                        unless a write's outcome is unknown
    │   │   └── PoolTimeout         unavailable           503  every connection stayed busy
    │   ├── AuthenticationFailed    connection_failed     500
    │   ├── DatabaseMissing         connection_failed     500
    │   └── PermissionDenied        permission_denied     500
    ├── InvalidInput                invalid_input         422  every refused field (errors)
    ├── ImportFailed                import_failed         422  a file to import has bad rows
    ├── Forbidden                   forbidden             403  the user's role may not do it
    ├── NotFound                    not_found             404  no such row (entity, id)
    ├── AlreadyExists               already_exists        409  a unique field is taken (field)
    ├── Conflict                    conflict              409  refused by the state of things
    │   ├── InsufficientInventory   insufficient_inventory     wants more than the stock
    │   ├── EmptyCart               empty_cart                 nothing to check out
    │   ├── CartClosed              cart_closed                the cart became an order
    │   ├── InvalidTransition       invalid_transition         an order cannot go there now
    │   ├── CartFull                cart_full                  the cart holds the most lines
    │   ├── PriceChanged            price_changed              the total is not the one agreed
    │   ├── IdempotencyKeyReused    idempotency_key_reused     the key names another checkout
    │   └── DatabaseNotEmpty        database_not_empty         seeding wants empty tables
    ├── TooManyAttempts             too_many_attempts     429  logins throttled (retry_after)
    ├── ConcurrencyConflict         concurrency_conflict  503  deadlock after retries: retryable
    ├── QueryTimeout                timeout               503  statement or lock timeout: retryable
    └── MigrationError              migration_error       500
        ├── MigrationLockTimeout    migration_locked      503  another run holds the lock
        ├── SchemaOutdated          schema_outdated       500  migrations missing, at start-up
        └── SchemaMissing           schema_missing        500  a table or column is missing

``retryable`` says whether the same call may simply be made again;
``outcome_unknown`` (a :class:`DatabaseUnavailable` only) says whether a
write may have happened although no answer came: the connection died after
the statement was sent. Such a write is not ``retryable`` (a repeat might do
it twice) unless it carried an idempotency key, which makes the repeat find
what the first try did (``Shopper.checkout(idempotency_key=...)``).

A web layer maps all of them in one handler (see the README, "Errors").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, TypeAlias

from shopdb.limits import CART_LINES_MAX, PROBLEMS_MAX

#: What :meth:`ShopError.details` holds: JSON values only.
JSON: TypeAlias = "str | int | bool | list[JSON] | dict[str, JSON] | None"
#: The ``type`` of a problem: a URN per code (RFC 9457 allows any URI).
PROBLEM_TYPE = "urn:shopdb:problem:"


class ShopError(Exception):
    """Base of every error shopdb raises on purpose."""

    #: Stable, machine-readable name of the kind of error (``not_found``, ...).
    code: ClassVar[str] = "error"
    #: The HTTP status a web layer answers with.
    http_status: ClassVar[int] = 500
    #: A short, fixed summary of the kind of error (RFC 9457's ``title``).
    title: ClassVar[str] = "The data layer failed"
    #: True when the same call may succeed if simply tried again, and doing so is
    #: safe (a class default; a :class:`DatabaseUnavailable` says per instance).
    retryable: bool = False

    def details(self) -> dict[str, JSON]:
        """What this error is about, JSON-ready (empty for most kinds)."""
        return {}

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer should carry (``Retry-After`` for a 429); usually none."""
        return {}

    def problem(self) -> dict[str, JSON]:
        """The error as an RFC 9457 problem details object (``application/problem+json``).

        ``type``, ``title``, ``status`` and ``detail`` as the RFC defines them,
        then ``code``, ``retryable`` and the :meth:`details` as extension members.
        """
        return {
            "type": PROBLEM_TYPE + self.code,
            "title": self.title,
            "status": self.http_status,
            "detail": str(self),
            "code": self.code,
            "retryable": self.retryable,
            **self.details(),
        }


class ConfigurationError(ShopError):
    """A setting or the database URL is unusable."""

    code = "configuration_error"
    title = "shopdb is misconfigured"


class ConnectionFailed(ShopError):
    """PostgreSQL could not be reached or refused us."""

    code = "connection_failed"
    title = "The database refused the connection"


class DatabaseUnavailable(ConnectionFailed):
    """The server is unreachable, starting, shutting down or went away mid-call.

    :attr:`outcome_unknown` is true when a write's connection died after its
    statement was sent: the write may have committed or not, nobody can say.
    Such an error is not :attr:`retryable` (the repeat might do it twice),
    unless the write carried an idempotency key (:meth:`keyed`): then the
    repeat finds what the first try did. Otherwise nothing happened, and the
    same call may simply be made again.
    """

    code = "unavailable"
    http_status = 503
    title = "The database is unavailable; try again"
    retryable = True

    def __init__(
        self, message: str, *, outcome_unknown: bool = False, retryable: bool | None = None
    ) -> None:
        super().__init__(message)
        #: A write may have happened although no answer came.
        self.outcome_unknown = outcome_unknown
        self.retryable = not outcome_unknown if retryable is None else retryable

    def after_write(self) -> DatabaseUnavailable:
        """This error as a write met it: the outcome is unknown, so no plain retry is safe.

        Unless the server said it refused the statement before running it (a
        read-only server, too many connections, starting up): then nothing
        happened and the error is returned as it is.
        """
        if self.outcome_unknown or not self.maybe_ran:
            return self
        again = DatabaseUnavailable(
            f"{self} (the write may or may not have happened)", outcome_unknown=True
        )
        again.__cause__ = self.__cause__
        return again

    def keyed(self) -> DatabaseUnavailable:
        """This error as a write with an idempotency key met it: a repeat with the key is safe."""
        if self.retryable:
            return self
        again = DatabaseUnavailable(
            f"{self}; repeat it with the same idempotency key",
            outcome_unknown=self.outcome_unknown,
            retryable=True,
        )
        again.__cause__ = self.__cause__
        return again

    #: Whether the statement may have run before the connection was lost (false
    #: only when the server said it refused it unrun); set by :func:`translate`.
    maybe_ran: bool = True

    def details(self) -> dict[str, JSON]:
        """``{"outcome_unknown": false}``: whether a write may have happened unanswered."""
        return {"outcome_unknown": self.outcome_unknown}


class PoolTimeout(DatabaseUnavailable):
    """No pooled connection became free within ``pool_timeout``."""


class AuthenticationFailed(ConnectionFailed):
    """The server rejected the user name or password."""


class DatabaseMissing(ConnectionFailed):
    """The server answered, but the database does not exist."""

    def __init__(self, database: str | None) -> None:
        named = f"database {database!r}" if database else "the database"
        super().__init__(f"{named} does not exist (run `shopdb setup` to create it)")
        self.database = database


class PermissionDenied(ConnectionFailed):
    """The role lacks a privilege the operation needs."""

    code = "permission_denied"
    title = "The database role lacks a privilege"


@dataclass(frozen=True)
class Problem:
    """One refused field: which (``field``, dotted for nested ones) and why (``reason``)."""

    field: str
    reason: str

    def to_json(self) -> dict[str, JSON]:
        """``{"field": ..., "reason": ...}``."""
        return {"field": self.field, "reason": self.reason}


#: Longest field name an error repeats (an unknown key is cut to this).
FIELD_NAME_MAX = 64
#: Where a web framework puts a value; not part of the field's name.
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


class InvalidInput(ShopError):
    """Values were refused: the first problems in :attr:`problems` (``field``, ``reason``).

    :attr:`problems` holds at most :data:`~shopdb.limits.PROBLEMS_MAX` of them;
    :attr:`count` is how many there were in all. :attr:`field` and
    :attr:`reason` are the first problem's, for code that handles one field at
    a time.
    """

    code = "invalid_input"
    http_status = 422
    title = "The input was refused"

    def __init__(self, field: str, reason: str, *more: Problem, count: int | None = None) -> None:
        self.problems: tuple[Problem, ...] = (Problem(field, reason), *more[: PROBLEMS_MAX - 1])
        self.count = max(count or 0, 1 + len(more))
        self.field = field
        self.reason = reason
        others = self.count - 1
        also = f" (and {others} more problem{'s' if others > 1 else ''})" if others else ""
        super().__init__(f"{field}: {reason}{also}")

    @classmethod
    def of(cls, problems: Iterable[Problem]) -> InvalidInput:
        """One error for several problems (at least one); only the first are kept."""
        kept: list[Problem] = []
        count = 0
        for problem in problems:
            count += 1
            if len(kept) < PROBLEMS_MAX:
                kept.append(problem)
        first, *rest = kept
        return cls(first.field, first.reason, *rest, count=count)

    @classmethod
    def from_errors(cls, errors: Iterable[Mapping[str, Any]]) -> InvalidInput:
        """From pydantic's ``ValidationError.errors()`` or FastAPI's ``RequestValidationError``.

        So a web framework's own validation errors come out in the same shape
        as shopdb's: ``{"field": "price", "reason": "must have at most 2
        decimal places"}``. The offending values are left out (they may be
        anything, NaN included, which JSON cannot carry), and so is everything
        past the first :data:`~shopdb.limits.PROBLEMS_MAX` problems but their count.
        """
        return cls.of(_problem_of(error) for error in errors)

    def details(self) -> dict[str, JSON]:
        """``{"errors": [{"field": ..., "reason": ...}, ...], "count": n}``."""
        return {"errors": [p.to_json() for p in self.problems], "count": self.count}


def _problem_of(error: Mapping[str, Any]) -> Problem:
    from shopdb.errors.wording import reason_for

    loc = [str(part) for part in error.get("loc", ())]
    if loc and loc[0] in _LOCATIONS:
        loc = loc[1:]
    if error.get("type") == "json_invalid":
        loc = []  # FastAPI puts the offset of the bad character here, not a field
    return Problem(_field_name(".".join(loc)) or "body", reason_for(error))


def _field_name(name: str) -> str:
    # An unknown key is named as the caller wrote it, which may be any length.
    return name if len(name) <= FIELD_NAME_MAX else name[: FIELD_NAME_MAX - 1] + "…"


class Forbidden(ShopError):
    """The user is known, but their role may not do this (``required_role`` may)."""

    code = "forbidden"
    http_status = 403
    title = "Not allowed for this user"

    def __init__(self, required_role: str, action: str = "do this") -> None:
        super().__init__(f"only {required_role} may {action}")
        self.required_role = required_role

    def details(self) -> dict[str, JSON]:
        """``{"required_role": "staff"}``."""
        return {"required_role": self.required_role}


class NotFound(ShopError):
    """No row of kind ``entity`` has the id ``key`` (or none that the caller may see)."""

    code = "not_found"
    http_status = 404
    title = "Not found"

    def __init__(self, entity: str, key: int | str | None, message: str | None = None) -> None:
        which = "that id" if key is None else f"id {key}"
        super().__init__(message or f"no {entity} with {which}")
        self.entity = entity
        self.key = key

    def details(self) -> dict[str, JSON]:
        """``{"entity": "product", "id": 7}``."""
        return {"entity": self.entity, "id": self.key}


@dataclass(frozen=True)
class RowProblem:
    """One thing wrong in a file to import: where (1-based line, field if known) and why."""

    line: int
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}"
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


class ImportFailed(ShopError):
    """A file to import has bad rows, so nothing from it was imported.

    ``problems`` holds the first problems in file order (at most
    ``shopdb.bulk.MAX_PROBLEMS``); ``count`` is how many there were in all.
    ``field`` and ``reason`` are the first problem's.
    """

    code = "import_failed"
    http_status = 422
    title = "The file was refused; nothing was imported"

    def __init__(self, problems: Sequence[RowProblem], count: int | None = None) -> None:
        self.problems = tuple(problems)
        self.count = len(self.problems) if count is None else count
        first = self.problems[0]
        self.field = first.field or "file"
        self.reason = first.reason
        more = self.count - 1
        also = f" (and {more} more problem{'s' if more != 1 else ''})" if more else ""
        super().__init__(f"{first}{also}; nothing was imported")

    def details(self) -> dict[str, JSON]:
        """Every row problem reported (line, field, reason) and how many there were."""
        return {
            "errors": [
                {"line": r.line, "field": r.field, "reason": r.reason} for r in self.problems
            ],
            "count": self.count,
        }


class AlreadyExists(ShopError):
    """A value that must be unique is taken; ``field`` names it."""

    code = "already_exists"
    http_status = 409
    title = "Already taken"

    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: is already taken")
        self.field = field

    def details(self) -> dict[str, JSON]:
        """``{"field": "email"}``."""
        return {"field": self.field}


class Conflict(ShopError):
    """The request is fine, but the state of things refuses it."""

    code = "conflict"
    http_status = 409
    title = "Refused by the current state"


@dataclass(frozen=True)
class Shortage:
    """One product a cart wants more of than there is."""

    product_id: int
    wanted: int
    available: int

    def to_json(self) -> dict[str, JSON]:
        """``{"product_id": ..., "wanted": ..., "available": ...}``."""
        return {"product_id": self.product_id, "wanted": self.wanted, "available": self.available}


class InsufficientInventory(Conflict):
    """Stock is short for every product in ``shortages``; nothing was changed."""

    code = "insufficient_inventory"
    title = "Not enough stock"

    def __init__(self, shortages: Sequence[Shortage]) -> None:
        # The text names the first few; details() lists them all (at most a
        # cart's CART_LINES_MAX).
        listed = ", ".join(
            f"product {s.product_id} (wanted {s.wanted}, available {s.available})"
            for s in shortages[:5]
        )
        more = f" and {len(shortages) - 5} more" if len(shortages) > 5 else ""
        super().__init__(f"insufficient inventory: {listed}{more}")
        self.shortages = tuple(shortages)

    def details(self) -> dict[str, JSON]:
        """``{"shortages": [{"product_id": 7, "wanted": 3, "available": 1}]}``."""
        return {"shortages": [s.to_json() for s in self.shortages]}


class EmptyCart(Conflict):
    """The cart holds no line, so there is nothing to check out."""

    code = "empty_cart"
    title = "The cart is empty"

    def __init__(self, cart_id: int | None) -> None:
        named = "the cart" if cart_id is None else f"cart {cart_id}"
        super().__init__(f"{named} is empty; there is nothing to check out")
        self.cart_id = cart_id

    def details(self) -> dict[str, JSON]:
        """``{"cart_id": 5}``."""
        return {"cart_id": self.cart_id}


class CartClosed(Conflict):
    """The cart was checked out (or closed): its lines can no longer change."""

    code = "cart_closed"
    title = "The cart is closed"

    def __init__(self, cart_id: int | None) -> None:
        named = "the cart" if cart_id is None else f"cart {cart_id}"
        super().__init__(f"{named} is checked out; its lines can no longer change")
        self.cart_id = cart_id

    def details(self) -> dict[str, JSON]:
        """``{"cart_id": 5}``."""
        return {"cart_id": self.cart_id}


class InvalidTransition(Conflict):
    """An order cannot move from its current ``status`` to ``wanted``."""

    code = "invalid_transition"
    title = "The order cannot change that way"

    def __init__(self, order_id: int, status: str, wanted: str) -> None:
        super().__init__(f"order {order_id} is {status}; it cannot become {wanted}")
        self.order_id = order_id
        self.status = status
        self.wanted = wanted

    def details(self) -> dict[str, JSON]:
        """``{"order_id": 9, "order_status": "shipped", "wanted": "cancelled"}``.

        (``order_status``: a problem's ``status`` is its HTTP status.)
        """
        return {"order_id": self.order_id, "order_status": self.status, "wanted": self.wanted}


class CartFull(Conflict):
    """The cart holds :data:`~shopdb.limits.CART_LINES_MAX` products; another is refused."""

    code = "cart_full"
    title = "The cart is full"

    def __init__(self, cart_id: int | None) -> None:
        named = "the cart" if cart_id is None else f"cart {cart_id}"
        super().__init__(
            f"{named} holds {CART_LINES_MAX} products, the most a cart may hold; "
            "check it out or remove a line first"
        )
        self.cart_id = cart_id
        self.limit = CART_LINES_MAX

    def details(self) -> dict[str, JSON]:
        """``{"cart_id": 5, "limit": 100}``."""
        return {"cart_id": self.cart_id, "limit": self.limit}


def _amount(value: Decimal) -> str:
    # Money in JSON is text with two decimals, as everywhere in shopdb.
    return f"{value.quantize(Decimal('0.01')):f}"


@dataclass(frozen=True)
class PriceChange:
    """One cart line whose product's price moved since the line was added or last set."""

    product_id: int
    old_unit_price: Decimal
    new_unit_price: Decimal

    def to_json(self) -> dict[str, JSON]:
        """``{"product_id": 7, "old_unit_price": "10.00", "new_unit_price": "12.50"}``."""
        return {
            "product_id": self.product_id,
            "old_unit_price": _amount(self.old_unit_price),
            "new_unit_price": _amount(self.new_unit_price),
        }


class PriceChanged(Conflict):
    """Checkout's total is not the ``expected_total`` the shopper agreed to; nothing was sold.

    ``changes`` lists every line whose price moved since it was put in the
    cart (lines added before prices were recorded, in migration 0010, are
    not listed: their old price is unknown).
    """

    code = "price_changed"
    title = "The prices changed; nothing was sold"

    def __init__(
        self, expected_total: Decimal, actual_total: Decimal, changes: Sequence[PriceChange]
    ) -> None:
        self.expected_total = expected_total
        self.actual_total = actual_total
        self.changes = tuple(changes)
        moved = "; ".join(
            f"product {c.product_id} was {_amount(c.old_unit_price)}, "
            f"is {_amount(c.new_unit_price)}"
            for c in self.changes
        )
        super().__init__(
            f"the total is {_amount(actual_total)}, not the one expected"
            + (f" ({moved})" if moved else "")
        )

    def details(self) -> dict[str, JSON]:
        """``{"actual_total": "12.50", "changes": [...]}`` (not the total the caller sent)."""
        return {
            "actual_total": _amount(self.actual_total),
            "changes": [c.to_json() for c in self.changes],
        }


class IdempotencyKeyReused(Conflict):
    """The idempotency key names another checkout: one of another cart, or at another total.

    A key stands for one checkout: repeating it returns that checkout's order;
    using it for a different one is refused, and nothing is sold. Make a new key
    for each checkout the shopper starts.
    """

    code = "idempotency_key_reused"
    title = "The idempotency key was used for another checkout"

    def __init__(self, order_id: int) -> None:
        super().__init__(
            f"this idempotency key placed order {order_id}, for another cart or total; "
            "use a new key for a new checkout"
        )
        self.order_id = order_id

    def details(self) -> dict[str, JSON]:
        """``{"order_id": 9}``: the order the key placed."""
        return {"order_id": self.order_id}


class DatabaseNotEmpty(Conflict):
    """Seeding fills an empty database only, and ``tables`` already hold rows."""

    code = "database_not_empty"
    title = "The database is not empty"

    def __init__(self, tables: Sequence[str]) -> None:
        self.tables = tuple(tables)
        verb = "holds" if len(self.tables) == 1 else "hold"
        super().__init__(
            f"the database is not empty ({', '.join(self.tables)} already {verb} rows); "
            "seed fills an empty database: run `shopdb database reset --yes` first"
        )

    def details(self) -> dict[str, JSON]:
        """``{"tables": ["products"]}``."""
        return {"tables": list(self.tables)}


class TooManyAttempts(ShopError):
    """Too many logins were tried for this login lately: refused without checking the password.

    Known and unknown logins are throttled alike, so this says nothing about
    whether the login exists. Not ``retryable``: trying again at once is refused
    again; ``retry_after`` says how many seconds to wait.
    """

    code = "too_many_attempts"
    http_status = 429
    title = "Too many login attempts; wait before trying again"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins for this login; try again in {retry_after} s")
        self.retry_after = retry_after

    def details(self) -> dict[str, JSON]:
        """``{"retry_after": 412}`` (seconds)."""
        return {"retry_after": self.retry_after}

    def headers(self) -> dict[str, str]:
        """``Retry-After`` in seconds (RFC 9110)."""
        return {"Retry-After": str(self.retry_after)}


class ConcurrencyConflict(ShopError):
    """A deadlock or serialization failure persisted through every retry."""

    code = "concurrency_conflict"
    http_status = 503
    title = "Too much contention; try again"
    retryable = True


class QueryTimeout(ShopError):
    """``statement_timeout`` or ``lock_timeout`` ran out before the statement finished."""

    code = "timeout"
    http_status = 503
    title = "The database took too long; try again"
    retryable = True


class MigrationError(ShopError):
    """A migration could not be applied or reverted."""

    code = "migration_error"
    title = "A migration failed"


class MigrationLockTimeout(MigrationError):
    """Another process held the migration lock for longer than we may wait."""

    code = "migration_locked"
    http_status = 503
    retryable = True


class SchemaMissing(MigrationError):
    """A query named a table or column the database lacks (SQLSTATE 42P01 or 42703).

    shopdb's own queries only name what its migrations create, so the database
    was never set up (``shopdb setup``) or its migrations are behind. Not
    ``retryable``: someone must set it up. The message names the missing
    relation or column (from shopdb's SQL, never from a caller's value); a web
    layer shows only the :attr:`title` (:mod:`shopdb.web` hides every 5xx's detail).
    """

    code = "schema_missing"
    title = "The database is not set up: run `shopdb setup`"

    def __init__(self, text: str) -> None:
        super().__init__(
            f"{text} (is the database set up? `shopdb setup` applies shopdb's migrations)"
        )


# SQLSTATE classes and codes; see https://www.postgresql.org/docs/current/errcodes-appendix.html
_UNAVAILABLE_STATES = frozenset(
    {
        "57P01",  # admin_shutdown: pg_terminate_backend or a fast shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: starting up or shutting down
        "53300",  # too_many_connections
        "25P03",  # idle_in_transaction_session_timeout
        "25006",  # read_only_sql_transaction: a write reached a replica or a fenced primary
    }
)
#: Of those, the states in which the server refused the statement before running it.
_REFUSED_UNRUN_STATES = frozenset({"57P03", "53300", "25006"})
_INPUT_STATES = {
    "22001": "is too long",
    "22003": "is out of range",
    "22P02": "is not a valid value",
    "22021": "contains a character the database cannot store (NUL)",
    "22P05": "contains a character the database cannot store",
    "2200H": "is out of range",
    "22023": "is not a valid value",
}


@dataclass(frozen=True)
class PoolLimits:
    """What a pool timeout message tells: how long the caller waited, for how many connections."""

    timeout: float
    connections: int


class Translating:
    """``with translating:``: a database error escaping the block leaves as a :class:`ShopError`.

    Every path to the database (the Store, sync and async, the pools' context
    managers, the CLI's commands) goes through one of these, so errors are
    translated in one place, always chained to the driver's error
    (``raise ... from exc``). Errors that are not the database's (and
    :class:`ShopError` itself) pass through untouched. Stateless and
    reentrant: one instance serves every thread and task.
    """

    __slots__ = ("limits",)

    def __init__(self, limits: PoolLimits | None = None) -> None:
        self.limits = limits

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None and not isinstance(exc, ShopError) and _is_database_error(exc):
            raise translate(exc, self.limits) from exc


#: The translation without pool numbers, for code that holds no pool.
translating = Translating()

_DATABASE_ERRORS: tuple[type[BaseException], ...] | None = None


def _is_database_error(exc: BaseException) -> bool:
    global _DATABASE_ERRORS  # noqa: PLW0603 (computed once, on first use, to keep imports lazy)
    if _DATABASE_ERRORS is None:
        import psycopg
        from sqlalchemy import exc as sa_exc

        _DATABASE_ERRORS = (psycopg.Error, sa_exc.DBAPIError, sa_exc.TimeoutError)
    return isinstance(exc, _DATABASE_ERRORS)


def translate(exc: BaseException, limits: PoolLimits | None = None) -> ShopError:
    """Turn a driver or SQLAlchemy exception into the matching :class:`ShopError`.

    This is the one place that knows SQLSTATEs and constraint names. An
    exception that is already a :class:`ShopError` is returned unchanged.
    ``limits`` puts the pool's numbers into a :class:`PoolTimeout`'s message.
    """
    if isinstance(exc, ShopError):
        return exc
    import psycopg
    import psycopg_pool
    from sqlalchemy import exc as sa_exc

    inner: BaseException = exc
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        inner = exc.orig
        if exc.connection_invalidated and not isinstance(inner, psycopg_pool.PoolTimeout):
            return DatabaseUnavailable(f"the database connection was lost: {_first_line(inner)}")
    if isinstance(inner, psycopg_pool.PoolTimeout | sa_exc.TimeoutError):
        return _pool_timeout(inner, limits)
    if not isinstance(inner, psycopg.Error):
        return ShopError(_first_line(inner))
    return _translate_psycopg(inner)


def _pool_timeout(exc: BaseException, limits: PoolLimits | None) -> PoolTimeout:
    if limits is None:
        return PoolTimeout(_first_line(exc).replace(" sec", " s"))
    return PoolTimeout(
        f"couldn't get a connection after {limits.timeout:.2f} s: all "
        f"{limits.connections} connections are in use "
        "(see SHOPDB_POOL_SIZE, SHOPDB_MAX_OVERFLOW, SHOPDB_POOL_TIMEOUT)"
    )


def _translate_psycopg(exc: Any) -> ShopError:  # noqa: PLR0911 (one return per kind)
    state: str | None = exc.sqlstate
    if state is None:
        # No SQLSTATE: the client side failed (socket closed, server gone) or
        # psycopg refused a value before sending it.
        import psycopg

        if isinstance(exc, psycopg.DataError):
            # psycopg refused to send a value (an int past 64 bits...): its text quotes it.
            return InvalidInput("value", "is not a value the database can take")
        return DatabaseUnavailable(f"the database connection failed: {_first_line(exc)}")
    if state in _REFUSED_UNRUN_STATES:
        refused = DatabaseUnavailable(_first_line(exc))
        refused.maybe_ran = False
        return refused
    if state.startswith("23"):
        return _integrity(state, exc.diag)
    if state in _INPUT_STATES:
        return InvalidInput(exc.diag.column_name or "value", _INPUT_STATES[state])
    for states, error in _BY_STATE:
        if state in states or state[:2] in states:
            return error(_first_line(exc))
    if state.startswith("22"):
        # A data exception's text may quote the value it refused: name the
        # condition from psycopg's class for the SQLSTATE (DivisionByZero).
        condition = re.sub(r"(?<!^)(?=[A-Z])", " ", type(exc).__name__).lower()
        return InvalidInput(exc.diag.column_name or "value", f"is not a valid value ({condition})")
    return ShopError(f"database error {state}: {_first_line(exc)}")


def _integrity(state: str, diag: Any) -> ShopError:
    """Class 23: which constraint, hence which field."""
    from shopdb.schema import describe_constraint

    if state == "23502":
        return InvalidInput(diag.column_name or "value", "must not be null")
    known = describe_constraint(diag.constraint_name)
    if known.conflict == "cart_closed":
        return CartClosed(None)
    if known.conflict == "cart_full":
        return CartFull(None)
    if state == "23505":
        return AlreadyExists(known.field)
    if state == "23503":
        return NotFound(known.entity or "row", None)
    return InvalidInput(known.field, known.reason or "violates a check constraint")


def _missing(_: str) -> ShopError:
    return DatabaseMissing(None)


# (SQLSTATEs or two-letter classes, error to raise), tried in order.
_BY_STATE: list[tuple[frozenset[str], Callable[[str], ShopError]]] = [
    (frozenset({"40001", "40P01"}), ConcurrencyConflict),
    (frozenset({"57014", "55P03"}), QueryTimeout),
    (_UNAVAILABLE_STATES | {"08"}, DatabaseUnavailable),
    (frozenset({"28"}), AuthenticationFailed),
    (frozenset({"3D000"}), _missing),
    (frozenset({"42501"}), PermissionDenied),
    (frozenset({"42P01", "42703"}), SchemaMissing),  # undefined_table, undefined_column
]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class SchemaOutdated(MigrationError):
    """The database lacks some of shopdb's migrations: raised when a pool opens on it.

    A deployment fault, not a passing one (``retryable`` is false): someone
    must run ``shopdb setup``. :meth:`details` names the missing revisions.
    """

    code = "schema_outdated"
    title = "The database schema is older than this shopdb"

    def __init__(self, missing: Sequence[tuple[str, str]], total: int) -> None:
        names = ", ".join(f"{revision} {name}" for revision, name in missing)
        count = "none" if len(missing) == total else f"{total - len(missing)}"
        super().__init__(
            f"the database is missing {len(missing)} of shopdb's {total} migrations "
            f"({count} applied): {names}; run `shopdb setup` to apply them "
            "(SHOPDB_CHECK_SCHEMA=false skips this check)"
        )
        self.missing = [revision for revision, _ in missing]

    def details(self) -> dict[str, JSON]:
        """``missing``: the revisions not applied, in the order they would run."""
        return {"missing": list(self.missing)}
