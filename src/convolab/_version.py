"""convolab's version, in a module that imports nothing (pyproject.toml states it too).

The saving package writes it into every file; reading it from ``convolab/__init__.py`` instead
would make the package's own modules import the package that imports them.
"""

__version__ = "0.1.0"
