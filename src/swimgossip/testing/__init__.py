"""Public testing tools for swimgossip users and its own test suite.

Submodules are imported explicitly (``from swimgossip.testing import strategies``) so that
importing this package pulls in no optional dependency such as hypothesis.
"""
