"""Helpers shared by more than one test folder: import them from here, never from another folder's conftest."""
