"""The Django ORM on the same tables (``managed = False``), written idiomatically.

Persistent connections (``CONN_MAX_AGE = None``), ``get_or_create`` and
``F()`` expressions for the cart, ``select_for_update`` in an ``atomic``
block for checkout, ``prefetch_related`` for the cart view: what a careful
Django developer writes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.engine import make_url


class OutOfStock(Exception):
    """Not enough inventory for a line."""


def _configure(url: str) -> None:
    import django
    from django.conf import settings

    if settings.configured:
        return
    parsed = make_url(url)
    settings.configure(
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": parsed.database,
                "USER": parsed.username or "",
                "PASSWORD": parsed.password or "",
                "HOST": parsed.host or parsed.query.get("host", ""),
                "PORT": str(parsed.port or ""),
                "CONN_MAX_AGE": None,
            }
        },
        INSTALLED_APPS=["bench.django_shop"],
        USE_TZ=False,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()


class DjangoShop:
    """Idiomatic Django ORM."""

    name = "Django ORM"

    def __init__(self, url: str, pool_size: int) -> None:
        _configure(url)
        from bench.django_shop import models

        self._m = models

    def get_product(self, product_id: int) -> object:
        return self._m.Product.objects.get(pk=product_id)

    def list_products(self, after_id: int) -> object:
        return list(self._m.Product.objects.filter(pk__gt=after_id).order_by("pk")[:20])

    def add_to_cart(self, cart_id: int, product_id: int, quantity: int) -> object:
        from django.db import transaction
        from django.db.models import F

        m = self._m
        with transaction.atomic():
            product = m.Product.objects.get(pk=product_id)
            item, created = m.CartItem.objects.select_for_update().get_or_create(
                cart_id=cart_id, product_id=product_id, defaults={"quantity": quantity}
            )
            if created:
                if quantity > product.inventory_count:
                    raise OutOfStock(product_id)
                return item.pk
            if item.quantity + quantity > product.inventory_count:
                raise OutOfStock(product_id)
            item.quantity = F("quantity") + quantity
            item.save(update_fields=["quantity"])
            return item.pk

    def get_cart(self, cart_id: int) -> object:
        cart = self._m.Cart.objects.prefetch_related("items__product").get(pk=cart_id)
        lines: list[tuple[Any, ...]] = [
            (i.product_id, i.product.name, i.product.price, i.quantity) for i in cart.items.all()
        ]
        return lines, sum((price * qty for _, _, price, qty in lines), Decimal(0))

    def checkout(self, cart_id: int) -> object:
        from django.db import transaction
        from django.db.models import F

        m = self._m
        with transaction.atomic():
            cart = m.Cart.objects.select_for_update().get(pk=cart_id)
            items = list(
                cart.items.select_related("product").select_for_update().order_by("product_id")
            )
            short = [i.product_id for i in items if i.quantity > i.product.inventory_count]
            if short:
                raise OutOfStock(short)
            for item in items:
                m.Product.objects.filter(pk=item.product_id).update(
                    inventory_count=F("inventory_count") - item.quantity
                )
            cart.items.all().delete()
            return cart_id

    def close(self) -> None:
        from django.db import connections

        connections.close_all()
