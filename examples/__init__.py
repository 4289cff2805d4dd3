"""What applications build on shopdb, tested in CI like the library itself."""
