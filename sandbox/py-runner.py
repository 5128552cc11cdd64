# Runs one test of an untrusted program inside pyodide, then puts the interpreter back as it was.
# Loaded once per worker (py-worker.ts); the worker calls run_test() per test. Blocking imports here
# is a speed bump, not the wall: the worker also leaves nothing on the JavaScript side worth reaching
# (empty `js` globals, no code generation, no host file system mounts).
import builtins
import io
import json
import os
import signal
import sys
import traceback

BLOCKED = frozenset("""
js pyodide pyodide_js _pyodide _pyodide_core micropip ctypes _ctypes socket _socket ssl _ssl
subprocess _posixsubprocess multiprocessing signal _signal gc select selectors asyncio _asyncio
importlib _imp _frozen_importlib _frozen_importlib_external zipimport threading _thread
""".split())

_real_import = builtins.__import__
_modules, _dicts, _lists = {}, {}, {}
_recursion = sys.getrecursionlimit()
_home = os.getcwd()
_stdout, _stderr = sys.stdout, sys.stderr


def setup():
    """Drops every JavaScript proxy that a module holds (the `js` and `pyodide_js` modules among
    them), then takes the snapshot each test is rolled back to. Called once, after the worker has
    set up its streams."""
    from pyodide.ffi import JsProxy

    for name in [k for k in sys.modules if k.partition(".")[0] in ("js", "pyodide_js")]:
        del sys.modules[name]
    for m in list(sys.modules.values()):
        d = getattr(m, "__dict__", None)
        if isinstance(d, dict):
            for k in [k for k, v in d.items() if isinstance(v, JsProxy)]:
                del d[k]
    _modules.update(sys.modules)
    _dicts.update({name: dict(m.__dict__) for name, m in _modules.items() if isinstance(getattr(m, "__dict__", None), dict)})
    _lists.update({name: list(getattr(sys, name)) for name in ("path", "meta_path", "path_hooks", "argv")})


def _guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and name.partition(".")[0] in BLOCKED:
        raise ImportError(f"module {name!r} is not available in the sandbox", name=name)
    return _real_import(name, globals, locals, fromlist, level)


class _Blocker:
    """First on sys.meta_path while a program runs: importlib cannot load a blocked module either."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ImportError(f"module {name!r} is not available in the sandbox", name=name)
        return None


def _user_builtins():
    b = dict(_dicts["builtins"])
    b["__import__"] = _guarded_import
    return b


def _restore():
    """Everything a program may have changed at module level goes back to its snapshot."""
    sys.settrace(None)
    sys.setprofile(None)
    for name in [k for k in sys.modules if k not in _modules]:
        del sys.modules[name]
    sys.modules.update(_modules)
    for name, saved in _dicts.items():
        d = _modules[name].__dict__
        if d.keys() != saved.keys() or any(d[k] is not v for k, v in saved.items()):
            d.clear()
            d.update(saved)
    for name, saved in _lists.items():
        getattr(sys, name)[:] = saved
    sys.path_importer_cache.clear()
    sys.setrecursionlimit(_recursion)
    # `open(0)` closes standard input when collected; the next test needs it back.
    for fd, path, flags in ((0, "/dev/stdin", os.O_RDONLY), (1, "/dev/stdout", os.O_WRONLY), (2, "/dev/stderr", os.O_WRONLY)):
        try:
            os.fstat(fd)
        except OSError:
            new = os.open(path, flags)
            if new != fd:
                os.dup2(new, fd)
                os.close(new)
    try:
        os.chdir(_home)
    except OSError:
        pass


def _where(e):
    """The last line of the program a traceback went through."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == "<main>"]
    return f" (line {frames[-1].lineno})" if frames else ""


def _describe(e):
    return traceback.format_exception_only(type(e), e)[-1].strip()[:300] + _where(e)


_program = None


def compile_program(code):
    """Compiles the program the next run_test calls run; the SyntaxError text if it does not compile."""
    global _program
    _program = None
    try:
        _program = compile(code, "<main>", "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        return _describe(e)
    return None


def run_test(stdin, fn, args_json):
    """Runs the program on one input. Returns (status, detail, result JSON): status '' means it ran
    to the end (the caller compares output or result), else error / timeout / memory."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8")
    sys.meta_path.insert(0, _Blocker)
    hidden = {k: sys.modules.pop(k) for k in list(sys.modules) if k.partition(".")[0] in BLOCKED}
    g = {"__name__": "__main__", "__builtins__": _user_builtins(), "__file__": "/main.py"}
    status, detail, result = "", "", None
    try:
        try:
            exec(_program, g)
            if fn is not None:
                f = g.get(fn)
                if not callable(f) and isinstance(g.get("Solution"), type):
                    f = getattr(g["Solution"](), fn, None)
                if not callable(f):
                    raise NameError(f"no function named {fn}")
                value = f(*json.loads(args_json))
                try:
                    result = json.dumps(value)
                except (TypeError, ValueError):
                    result = json.dumps(repr(value))
        except SystemExit as e:
            code = e.code
            if code not in (None, 0):
                status, detail = "error", f"exit code {code}" if isinstance(code, int) else f"exit: {str(code)[:200]}"
            elif fn is not None:
                status, detail = "error", "the program exited before the function was called"
        except KeyboardInterrupt:
            status, detail = "timeout", "time limit exceeded"
        except MemoryError as e:
            status, detail = "memory", _describe(e)
        except BaseException as e:  # noqa: BLE001 - anything the program raises is its result
            status, detail = "error", _describe(e)
    finally:
        # Handlers off first: a late interrupt must not land in the restore.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.modules.update(hidden)
        _restore()
        for stream in (_stdout, _stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001 - a full output is reported by the worker
                pass
    return status, detail, result
