"""The HTTP side: the control API, the live web page, and the uvicorn server that runs them."""
