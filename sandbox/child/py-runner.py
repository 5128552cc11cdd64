# The Python side of the sandbox process (py.ts), loaded once into a namespace only JavaScript holds.
# setup() cuts pyodide's bridges to JavaScript and installs the guard; py.ts then snapshots the whole
# interpreter and copies it back after every program, so nothing here has to undo a program. Per
# test py.ts calls begin(), then the driver begin() returns, then (between tests of one program)
# end(), which gives the next test fresh module state. The driver is called from JavaScript, so its
# frame is the bottom of the Python stack and it lives in globals of its own, made fresh for each
# test: a program that walks frames or tracebacks finds its own code and the driver, never this
# module. An audit hook, closed over its own state, refuses what a program must not do (blocked
# imports, processes, sockets, trace hooks, gc introspection, new code objects) and, between tests,
# any frame access at all, so a finaliser that runs during the clean-up cannot climb into it.
import builtins
import io
import os
import signal
import sys
from operator import is_

# importlib stays importable (dataclasses and inspect need it); its own import path meets the
# blocker that begin() puts first on sys.meta_path, the plain import statement meets the guard.
BLOCKED = frozenset("""
js pyodide pyodide_js _pyodide _pyodide_core micropip ctypes _ctypes socket _socket ssl _ssl
subprocess _posixsubprocess multiprocessing _multiprocessing signal _signal gc select selectors
asyncio _asyncio _imp zipimport threading _thread pty termios fcntl resource mmap _testcapi
_testinternalcapi faulthandler
""".split())
# Audit events a program may not raise (exact names, then prefixes).
DENIED = frozenset("""
os.system os.exec os.spawn os.posix_spawn os.fork os.forkpty os.kill os.killpg os.startfile
os.putenv os.unsetenv subprocess.Popen pty.spawn sys.settrace sys.setprofile sys._current_frames
sys._current_exceptions sys.addaudithook sys._setprofileallthreads sys._settraceallthreads
code.__new__ function.__new__ cpython._PySys_ClearAuditHooks cpython.remote_debugger_script
""".split())
DENIED_PREFIXES = ("ctypes.", "socket.", "gc.", "sys.monitoring", "_posixsubprocess", "mmap.", "winreg.")
# Between tests (a finaliser running in the clean-up) not even frames.
FRAME_EVENTS = frozenset(("sys._getframe", "sys._getframemodulename", "object.__getattr__"))

DRIVER = '''
import json as _json
import sys as _sys
import traceback as _traceback


def _describe(e):
    text = _traceback.format_exception_only(type(e), e)[-1].strip()[:300]
    lines = [f.lineno for f in _traceback.extract_tb(e.__traceback__) if f.filename == "<main>"]
    return text + (f" (line {lines[-1]})" if lines else "")


def drive(program, fn, args_json, user_builtins):
    """Runs the program (and the called function). (status, detail, result JSON): status '' means it
    ran to the end and the caller compares output or result; else error / timeout / memory."""
    g = {"__name__": "__main__", "__builtins__": user_builtins, "__file__": "/main.py"}
    # pyodide's C code imports its (emptied) core module again when a call from JavaScript needs it:
    # out of sys.modules before the program starts.
    for name in [n for n in _sys.modules if n.partition(".")[0] in HOST]:
        del _sys.modules[name]
    try:
        exec(program, g)
        if fn is None:
            return "", "", None
        f = g.get(fn)
        if not callable(f) and isinstance(g.get("Solution"), type):
            f = getattr(g["Solution"](), fn, None)
        if not callable(f):
            raise NameError(f"no function named {fn}")
        value = f(*_json.loads(args_json))
        try:
            return "", "", _json.dumps(value)
        except (TypeError, ValueError):
            return "", "", _json.dumps(repr(value))
    except SystemExit as e:
        code = e.code
        if code not in (None, 0):
            return "error", f"exit code {code}" if isinstance(code, int) else f"exit: {str(code)[:200]}", None
        if fn is not None:
            return "error", "the program exited before the function was called", None
        return "", "", None
    except KeyboardInterrupt:
        return "timeout", "time limit exceeded", None
    except MemoryError as e:
        return "memory", _describe(e), None
    except BaseException as e:  # noqa: BLE001 - anything the program raises is its result
        return "error", _describe(e), None


class Blocker:
    """First on sys.meta_path during a test, for imports that do not pass the audit hook."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ImportError(f"module {name!r} is not available in the sandbox", name=name)
        return None
'''

MAX_RECURSION = 1_000_000
CLAMP = '''
def setrecursionlimit(limit, /):
    """Set the maximum depth of the Python interpreter stack; at most 1,000,000 in the sandbox."""
    return _set(min(limit, MAX_RECURSION) if isinstance(limit, int) else limit)
'''

_modules, _dicts, _lists = {}, {}, {}
_dict_views = []  # (live module dict, saved keys, saved values, saved dict): compared at C speed
_recursion = sys.getrecursionlimit()
_home = os.getcwd()
_stdout, _stderr = sys.stdout, sys.stderr
_driver = compile(DRIVER, "<driver>", "exec")
_hidden = {}
_user_time = None  # set by setup(): switches the audit hook between a test and the clean-up


def _unchanged(d, keys, values):
    """Whether a dict still holds exactly these keys and values (identity, at C speed)."""
    return len(d) == len(keys) and all(map(is_, d.values(), values)) and all(map(is_, d, keys))


def _install_guard():
    """Adds the audit hook; returns the switch (a one-item list) only this module holds."""
    user = [False]

    def guard(event, args):
        if user[0]:
            if event == "import":
                if args[0].partition(".")[0] in BLOCKED:
                    raise ImportError(f"module {args[0]!r} is not available in the sandbox")
                return
            if event in DENIED or event.startswith(DENIED_PREFIXES) or (event == "object.__setattr__" and args[1] == "__code__"):
                raise PermissionError(f"{event} is not available in the sandbox")
        elif event in FRAME_EVENTS:
            raise PermissionError(f"{event} is not available in the sandbox")

    sys.addaudithook(guard)
    return user


HOST = ("js", "pyodide_js", "pyodide", "_pyodide", "_pyodide_core", "micropip")


def _from_host(v, JsProxy):
    """Whether v is a bridge to the JavaScript host: a JsProxy, a pyodide module, or a function, class
    or object that one of them made. (A JsProxy answers attribute lookups from JavaScript, so it is
    recognised by type before anything is asked of it.)"""
    import types

    if isinstance(v, JsProxy):
        return True
    if isinstance(v, types.ModuleType):
        name = v.__name__
    elif isinstance(v, (type, types.FunctionType, types.BuiltinFunctionType)):
        name = getattr(v, "__module__", None) or ""
    else:
        name = type(v).__module__
    return isinstance(name, str) and name.partition(".")[0] in HOST


def _cut_host_bridges():
    """Removes every way from a module to pyodide's JavaScript side, once, before the snapshot: the
    pyodide modules leave sys.modules for good (`__main__` held the core module itself), every module
    attribute that is one of them or made by one is replaced, and pyodide's import finder for
    JavaScript modules is dropped. Returns the names it replaced."""
    import gc
    import types
    from pyodide.ffi import JsProxy

    cut = []
    for name, m in list(sys.modules.items()):
        if name.partition(".")[0] in HOST or not isinstance(m, types.ModuleType):
            continue
        d = m.__dict__
        for k, v in list(d.items()):
            if _from_host(v, JsProxy):
                # json's encoder compares with pyodide's JavaScript null by identity: a fresh object never matches.
                d[k] = object() if k == "_JSNULL" else None
                cut.append(f"{name}.{k}")
    sys.meta_path[:] = [f for f in sys.meta_path if not _from_host(f, JsProxy)]
    sys.path_hooks[:] = [h for h in sys.path_hooks if not _from_host(h, JsProxy)]
    sys.path_importer_cache.clear()
    # Their classes stay reachable (object.__subclasses__(), and C code holds them), so their
    # functions' globals must lead nowhere: the Python-level pyodide modules are emptied. (The
    # sandbox calls into Python only through proxies of its own runner after this.)
    # pyodide's C code uses its own functions directly, so the core module keeps its types and tables
    # but loses every function and converter (to_js, create_proxy, raw_call, ...) a program could
    # call to make a JavaScript object. A builtin module made again (importlib's BuiltinImporter,
    # `_imp.create_builtin`) is filled from a copy of its first dict that CPython keeps: every dict
    # holding those functions loses them, the copy among them.
    core_fns = []
    for name in [k for k in sys.modules if k.partition(".")[0] in HOST]:
        m = sys.modules.pop(name)
        if not isinstance(m, types.ModuleType):
            continue
        d = m.__dict__
        if name == "_pyodide_core":
            core_fns = [v for v in d.values() if callable(v) and not isinstance(v, type)]
        else:
            keep = {k: d[k] for k in ("__name__", "__doc__") if k in d}
            d.clear()
            d.update(keep)
    ids = {id(f) for f in core_fns}
    for o in gc.get_objects():
        if type(o) is dict and any(id(v) in ids for v in o.values()):
            for k in [k for k, v in o.items() if id(v) in ids]:
                del o[k]
    del core_fns
    del JsProxy
    gc.collect()
    return cut


def setup():
    """Cuts the bridges to the JavaScript host (_cut_host_bridges), takes the snapshot each test of a
    program is rolled back to, then installs the guard. Called once, after the worker has set up its
    streams; the sandbox process then snapshots the whole interpreter for the next programs."""
    global _user_time
    _cut_host_bridges()
    # Unwinding an exception through more frames than the worker's stack holds (256 MB, set by the
    # pool) is a fatal error for pyodide, so a runaway recursion under a raised limit would cost a
    # worker reload: clamp the limit where unwinding is still safe. (Defined in globals of its own.)
    clamp = {"_set": sys.setrecursionlimit, "MAX_RECURSION": MAX_RECURSION}
    exec(CLAMP, clamp)
    sys.setrecursionlimit = clamp["setrecursionlimit"]
    import json  # noqa: F401 - the driver's imports load here, not in a test
    import traceback  # noqa: F401

    _modules.update(sys.modules)
    _dicts.update({name: dict(m.__dict__) for name, m in _modules.items() if isinstance(getattr(m, "__dict__", None), dict)})
    _dict_views.extend((m.__dict__, tuple(_dicts[name]), tuple(_dicts[name].values()), _dicts[name]) for name, m in _modules.items() if name in _dicts)
    _lists.update({name: list(getattr(sys, name)) for name in ("path", "meta_path", "path_hooks", "argv")})
    _user_time = _install_guard()


def compile_program(code):
    """The program's code object, or the text of its SyntaxError."""
    try:
        return compile(code, "<main>", "exec"), None
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        import traceback

        return None, traceback.format_exception_only(type(e), e)[-1].strip()[:300]


def begin(stdin):
    """Gets the interpreter ready for one test; returns the driver to call and the builtins the
    program sees (a copy: it may replace them)."""
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8")
    _hidden.update({k: sys.modules.pop(k) for k in list(sys.modules) if k.partition(".")[0] in BLOCKED})
    d = {"__name__": "r1_driver", "__builtins__": builtins, "BLOCKED": BLOCKED, "HOST": HOST}
    exec(_driver, d)
    sys.meta_path.insert(0, d["Blocker"])
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _user_time[0] = True
    return d["drive"], dict(_dicts["builtins"])


def end():
    """Between two tests of one program: module attributes, sys lists, standard streams and
    descriptors, the directory and the recursion limit back to the snapshot (class attributes the
    program changed stay, for its own later tests; the next program starts from py.ts's memory
    snapshot). False when something could not be put back, and the process should retire."""
    _user_time[0] = False
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.settrace(None)
    sys.setprofile(None)
    sys.stdin = _dicts["sys"]["stdin"]  # begin() replaced it; put back, sys needs no restore for that
    sys.modules.update(_hidden)
    _hidden.clear()
    ok = True
    for _ in range(3):  # a finaliser run by one pass may change something again
        changed = len(sys.modules) != len(_modules)
        for name in [k for k in sys.modules if k not in _modules]:
            del sys.modules[name]
        sys.modules.update(_modules)
        for d, keys, values, saved in _dict_views:
            if not _unchanged(d, keys, values):
                d.clear()
                d.update(saved)
                changed = True
        for name, saved in _lists.items():
            getattr(sys, name)[:] = saved
        if not changed:
            break
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
        ok = False
    for stream in (_stdout, _stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - a full output is reported by the worker
            pass
    return ok
