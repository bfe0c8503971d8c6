"""Helpers shared by the test folders: references, gradient checks, fakes and file fixtures."""
