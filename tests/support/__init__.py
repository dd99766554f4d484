"""Helpers the test folders share: real servers (never mocks of our own code), and
:mod:`tests.support.polling` to wait for what they do."""
