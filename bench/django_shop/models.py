"""shopdb's tables as Django models; Django neither creates nor migrates them."""

from __future__ import annotations

from django.db import models


class Product(models.Model):
    name = models.TextField()
    description = models.TextField(null=True)
    price = models.DecimalField(max_digits=20, decimal_places=2)
    inventory_count = models.IntegerField()

    class Meta:
        managed = False
        db_table = "products"
        app_label = "django_shop"


class Cart(models.Model):
    user_id = models.IntegerField()
    created_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "carts"
        app_label = "django_shop"


class CartItem(models.Model):
    cart = models.ForeignKey(Cart, models.DO_NOTHING, related_name="items")
    product = models.ForeignKey(Product, models.DO_NOTHING)
    quantity = models.IntegerField()

    class Meta:
        managed = False
        db_table = "cart_items"
        app_label = "django_shop"
