"""The built-in data plane: a thin asyncio shell (uvloop + httptools) over protocol/ and router/."""
