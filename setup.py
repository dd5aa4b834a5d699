"""Only the optional C extension lives here (everything else is in pyproject.toml). Where it
cannot be built (no compiler, no Python or Linux headers) the install still succeeds and the
Python reader runs; `compiled_available()` in appliance/frontend/ads1299/compiled.py says why."""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "appliance.frontend.ads1299._reader",
    ["appliance/frontend/ads1299/_reader.c"],
    extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
    extra_link_args=["-pthread"],
    optional=True,
)])
