"""The services `make bench-e2e` measures beside the reference one (examples/shop_api)."""
