# The Python side of the sandbox process (py.ts), loaded once into a namespace only JavaScript holds.
# setup() cuts pyodide's bridges to JavaScript, takes what no program may have (the `_ctypes` module
# is removed from the interpreter by py.ts; blocked modules leave sys.modules), installs the guard,
# and readies the driver; py.ts then snapshots the whole interpreter and puts it back after every
# test, so nothing here has to undo a program. Per test py.ts calls the driver (its frame is the
# bottom of the Python stack, in globals of its own: a program that walks frames or tracebacks finds
# its own code and the driver, never this module), then `finish`, which writes the function's result
# in the result notation (sandbox/result.ts) with builtins captured here before any program ran, and
# runs no code of the program, so nothing the program did can change how its result is written.
# An audit hook, closed over its own state, refuses what a program must not do (blocked imports,
# processes, sockets, trace hooks, gc introspection, new code objects).
import builtins
import io
import signal
import sys

# importlib stays importable (dataclasses and inspect need it); its own import path meets the
# blocker that setup() puts first on sys.meta_path, the plain import statement meets the guard.
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
# Builtin modules that must not exist at all: py.ts deletes them from the interpreter's table.
REMOVED = ("_ctypes",)

DRIVER = '''
import json as _json
import sys as _sys
import traceback as _traceback


def _describe(e):
    text = _traceback.format_exception_only(type(e), e)[-1].strip()[:300]
    lines = [f.lineno for f in _traceback.extract_tb(e.__traceback__) if f.filename == "<main>"]
    return text + (f" (line {lines[-1]})" if lines else "")


def drive(code, stdin, fn, args_json):
    """Runs the program (and the called function) on one test's input. (status, detail, value):
    status '' means it ran to the end and value is the function's result (None for a script);
    else error / timeout / memory. Everything here happens before the program's first line or is
    the program's own business: nothing in these globals is worth changing."""
    _sys.stdin = _TextIOWrapper(_BytesIO(stdin.encode()), encoding="utf-8")
    args = _json.loads(args_json) if fn is not None else None
    g = {"__name__": "__main__", "__builtins__": _builtins, "__file__": "/main.py"}
    try:
        try:
            program = compile(code, "<main>", "exec")
        except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
            return "error", _traceback.format_exception_only(type(e), e)[-1].strip()[:300], None
        exec(program, g)
        if fn is None:
            return "", "", None
        f = g.get(fn)
        if not callable(f) and isinstance(g.get("Solution"), type):
            f = getattr(g["Solution"](), fn, None)
        if not callable(f):
            raise NameError(f"no function named {fn}")
        return "", "", f(*args)
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
    finally:
        # The standard streams the test started with: what the program printed reaches py.ts.
        for stream in (_stdout, _stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001 - a full output is reported by py.ts
                pass


class Blocker:
    """First on sys.meta_path, for imports that do not pass the audit hook."""

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

# pyodide's own time.sleep asks its (cut) JavaScript side whether it may suspend. This one sleeps in
# short slices, so the time-limit check (pyodide's interrupt, read between bytecodes) stops a long
# sleep at the limit. Defined in globals of its own: a program reaching them finds only these two.
SLEEP = '''
def sleep(seconds, /):
    """Delay execution for a given number of seconds (in slices of at most 5 ms)."""
    if seconds != seconds or seconds < 0:
        raise ValueError("sleep length must be non-negative")
    end = _monotonic() + seconds
    while True:
        left = end - _monotonic()
        if left <= 0:
            return None
        _sleep(min(left, 0.005))
'''

# Nesting the result may have; the judge refuses deeper text (sandbox/result.ts MAX_DEPTH).
MAX_DEPTH = 1000
# Integers wider than this go out in hexadecimal: CPython writes wider ones in decimal with Python
# code (_pylong), which a program could have replaced, and past 4,300 digits not at all.
DECIMAL_BITS = 2000


def _install_guard():
    """Adds the audit hook, active from here on."""

    def guard(event, args):
        if event == "import":
            if args[0].partition(".")[0] in BLOCKED:
                raise ImportError(f"module {args[0]!r} is not available in the sandbox")
            return
        if event in DENIED or event.startswith(DENIED_PREFIXES) or (event == "object.__setattr__" and args[1] == "__code__"):
            raise PermissionError(f"{event} is not available in the sandbox")

    sys.addaudithook(guard)


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


def _plain_sleep():
    """time.sleep as CPython has it (pyodide wrapped it), in slices the time limit can interrupt."""
    import time

    original = time.sleep
    while hasattr(original, "__wrapped__"):
        original = original.__wrapped__
    ns = {"_sleep": original, "_monotonic": time.monotonic}
    exec(SLEEP, ns)
    time.sleep = ns["sleep"]


def _make_finish():
    """The function py.ts calls after the driver: (status, detail, result text). Everything it uses
    is captured now, before any program runs; it calls only C methods of the built-in types on the
    value (never a method the program could define or replace), with the cyclic garbage collector
    off so that no finaliser of the program runs while its frame is on the stack."""
    import gc
    from _json import encode_basestring_ascii as quote

    # Names looked up at call time would go through the builtins module, which the program may have
    # changed: every one is a local of this closure instead.
    t_type, t_len, t_issubclass, t_list, t_str, t_tuple, t_range = type, len, issubclass, list, str, tuple, range
    t_none, t_bool, t_int, t_float, t_dict = type(None), bool, int, float, dict
    seq_types = (list, tuple)
    list_iter, tuple_iter, dict_items = list.__iter__, tuple.__iter__, dict.items
    int_repr, int_bits, int_abs, int_format, int_lt, float_repr = int.__repr__, int.bit_length, int.__abs__, int.__format__, int.__lt__, float.__repr__
    str_copy, type_name = str.__str__, type.__dict__["__name__"].__get__
    gc_disable = gc.disable
    special = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
    statuses = frozenset(("", "error", "timeout", "memory"))
    VALUE, TEXT = 0, 1

    def name_of(t):
        try:
            return str_copy(type_name(t))
        except BaseException:  # noqa: BLE001 - an odd type's name is not worth failing over
            return "object"

    def number(v, t):
        if t_issubclass(t, t_float):
            r = float_repr(v)
            return special.get(r, r)
        if int_bits(v) <= DECIMAL_BITS:
            return int_repr(v)
        h = int_format(int_abs(v), "x")
        return ("-0x" if int_lt(v, 0) else "0x") + h

    def key_text(k):
        t = t_type(k)
        if t_issubclass(t, t_str):
            return quote(k)
        if t is t_bool:
            return '"true"' if k else '"false"'
        if t is t_none:
            return '"null"'
        if t_issubclass(t, (t_int, t_float)):
            return '"' + number(k, t) + '"'
        return None

    def encode(value, cap):
        """(result text, '') or (None, why)."""
        parts, size, stack = [], 0, [(VALUE, value, 0)]
        while stack:
            kind, v, depth = stack.pop()
            if kind == TEXT:
                text = v
            else:
                t = t_type(v)
                if t is t_none:
                    text = "null"
                elif t is t_bool:
                    text = "true" if v else "false"
                elif t_issubclass(t, (t_int, t_float)):
                    text = number(v, t)
                elif t_issubclass(t, t_str):
                    text = quote(v)
                elif t_issubclass(t, seq_types) or t_issubclass(t, t_dict):
                    if depth >= MAX_DEPTH:
                        return None, f"the function's result is nested deeper than {MAX_DEPTH}"
                    if t_issubclass(t, t_dict):
                        items = t_list(dict_items(v))
                        stack.append((TEXT, "}", 0))
                        for i in t_range(t_len(items) - 1, -1, -1):
                            k, x = items[i]
                            kt = key_text(k)
                            if kt is None:
                                return None, f"the function's result has a dict key of type {name_of(t_type(k))}, which JSON cannot hold"
                            stack.append((VALUE, x, depth + 1))
                            stack.append((TEXT, ("," if i else "") + kt + ":", 0))
                        text = "{"
                    else:
                        items = t_list(list_iter(v) if t_issubclass(t, t_list) else tuple_iter(v))
                        stack.append((TEXT, "]", 0))
                        for i in t_range(t_len(items) - 1, -1, -1):
                            stack.append((VALUE, items[i], depth + 1))
                            if i:
                                stack.append((TEXT, ",", 0))
                        text = "["
                else:
                    return None, f"the function returned a {name_of(t)}, which is not JSON-like"
            parts.append(text)
            size += t_len(text)
            if size > cap:
                return None, "output"
        return "".join(parts), ""

    def finish(ran, cap):
        gc_disable()
        if t_type(ran) is not t_tuple or t_len(ran) != 3:
            return "error", "the driver did not report", None
        status, detail, value = ran
        if t_type(status) is not t_str or status not in statuses:
            return "error", "the driver did not report", None
        if status:
            return status, detail[:300] if t_type(detail) is t_str else "", None
        if value is None:
            return "", "", None
        text, why = encode(value, cap)
        if text is None:
            return ("output", "", None) if why == "output" else ("error", why, None)
        return "", "", text

    return finish


finish = None
drive = None


def setup():
    """Cuts the bridges to the JavaScript host, readies the driver and the result writer, puts the
    blocked modules out of reach and installs the guard. Called once, after the worker has set up
    its streams; the sandbox process then snapshots the whole interpreter for every test."""
    global finish, drive
    _cut_host_bridges()
    _plain_sleep()
    # Unwinding an exception through more frames than the worker's stack holds is a fatal error for
    # pyodide, so a runaway recursion under a raised limit would cost a worker reload: clamp the
    # limit where unwinding is still safe. (Defined in globals of its own.)
    clamp = {"_set": sys.setrecursionlimit, "MAX_RECURSION": MAX_RECURSION}
    exec(CLAMP, clamp)
    sys.setrecursionlimit = clamp["setrecursionlimit"]
    finish = _make_finish()
    import json  # noqa: F401 - the driver's imports load here, not in a test
    import traceback  # noqa: F401

    d = {
        "__name__": "r1_driver", "__builtins__": builtins, "_builtins": builtins, "BLOCKED": BLOCKED,
        "_TextIOWrapper": io.TextIOWrapper, "_BytesIO": io.BytesIO, "_stdout": sys.stdout, "_stderr": sys.stderr,
    }
    exec(compile(DRIVER, "<driver>", "exec"), d)
    drive = d["drive"]
    sys.meta_path.insert(0, d["Blocker"])
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # The blocked modules already loaded leave sys.modules (this module keeps the ones it uses).
    for name in [k for k in sys.modules if k.partition(".")[0] in BLOCKED]:
        del sys.modules[name]
    sys.builtin_module_names = tuple(n for n in sys.builtin_module_names if n not in REMOVED)
    _install_guard()
