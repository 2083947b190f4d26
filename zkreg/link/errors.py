"""Failures a data link reports to the session server."""


class DataTierUnavailable(Exception):
    """
    No data server came back within the data-tier timeout: a held request failed (the
    session server then closes the client's connection, which sees ConnectionLoss and
    tries another server).
    """
