"""What every implementation in the benchmark offers: the five operations."""

from __future__ import annotations

from typing import Protocol


class Shop(Protocol):
    """One way of running the e-commerce operations against the benchmark database."""

    name: str

    def get_product(self, product_id: int) -> object:
        """One product by id."""
        ...

    def list_products(self, after_id: int) -> object:
        """A page of 20 products after ``after_id``."""
        ...

    def add_to_cart(self, cart_id: int, product_id: int, quantity: int) -> object:
        """Add to a cart line (or create it) within stock."""
        ...

    def get_cart(self, cart_id: int) -> object:
        """The cart with its lines, prices and total."""
        ...

    def checkout(self, cart_id: int) -> object:
        """Sell every line of the cart or nothing; empty the cart."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class AsyncShop(Protocol):
    """The same five operations for ``async def`` code, on one event loop."""

    name: str

    async def get_product(self, product_id: int) -> object:
        """One product by id."""
        ...

    async def list_products(self, after_id: int) -> object:
        """A page of 20 products after ``after_id``."""
        ...

    async def add_to_cart(self, cart_id: int, product_id: int, quantity: int) -> object:
        """Add to a cart line (or create it) within stock."""
        ...

    async def get_cart(self, cart_id: int) -> object:
        """The cart with its lines, prices and total."""
        ...

    async def checkout(self, cart_id: int) -> object:
        """Sell every line of the cart or nothing; empty the cart."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
