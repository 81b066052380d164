"""HTTP handlers: they parse the request, call the domain modules, render the answer."""
