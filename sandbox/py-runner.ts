// The Python side of the Python worker, run once in a fresh pyodide. `make()` cuts the interpreter off
// from the JavaScript host (the js / pyodide modules are dropped and their imports refused) and
// returns `run_test`, which the worker calls from JavaScript for each test, so no pyodide Python
// frame sits above the program. While a program runs, an audit hook (which cannot be removed)
// refuses imports of the host bridges, writes to files, processes, sockets, ctypes, frame and heap
// introspection, tracing hooks and changes to classes the program did not define; it stays on after
// set-up, so code the program leaves behind (finalizers) is held to it too. After each run the
// interpreter is put back: modules, builtins, sys, import machinery, signal handler, gc callbacks.
export const PY_RUNNER = String.raw`
def make():
    import sys, io, json, gc, builtins, signal, os, posix, types

    BRIDGES = {'js', 'pyodide_js', 'pyodide', '_pyodide', '_pyodide_core', 'micropip', 'ctypes', '_ctypes',
               'subprocess', '_posixsubprocess', 'socket', '_socket', 'ssl', '_ssl', 'select', 'multiprocessing',
               '_multiprocessing', 'pyodide_http', 'urllib3', 'requests'}
    REFUSED_EVENTS = ('os.system', 'os.exec', 'os.posix_spawn', 'os.spawn', 'os.fork', 'os.forkpty', 'os.kill',
                      'os.killpg', 'subprocess.Popen', 'os.remove', 'os.rename', 'os.rmdir', 'os.mkdir', 'os.chmod',
                      'os.chown', 'os.link', 'os.symlink', 'os.truncate', 'os.utime', 'os.putenv', 'os.unsetenv',
                      'os.chdir', 'os.chflags', 'os.lchflags', 'os.mkfifo', 'os.mknod', 'os.setxattr', 'os.removexattr',
                      'shutil.', 'socket.', 'ctypes.', 'gc.get_objects', 'gc.get_referrers', 'gc.get_referents',
                      'sys._getframe', 'sys._current_frames', 'sys._current_exceptions', 'sys.settrace', 'sys.setprofile',
                      'sys.monitoring', 'sys.addaudithook', 'sys.set_asyncgen_hooks', 'cpython._PySys_ClearAuditHooks',
                      'webbrowser.', 'urllib.Request', 'http.client.', 'ftplib.', 'smtplib.', 'poplib.', 'imaplib.',
                      'telnetlib.', 'sqlite3.', 'msvcrt.', 'winreg.', 'pty.', 'syslog.', 'resource.', 'mmap.', 'fcntl.',
                      'os.add_dll_directory', 'os.startfile', 'code.__new__', 'function.__new__')
    FRAMES = {'tb_frame', 'gi_frame', 'cr_frame', 'ag_frame', 'f_back', 'f_globals', 'f_locals', 'f_builtins',
              'gi_code', 'cr_code', 'ag_code'}
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    active = [False]

    def hook(event, args):
        if not active[0]:
            return
        if event == 'import':
            if args[0].split('.')[0] in BRIDGES:
                raise ImportError(f"module '{args[0]}' is not available in the sandbox")
        elif event == 'open':
            path, mode, flags = args
            if isinstance(path, int):
                if path not in (0, 1, 2):
                    raise PermissionError('file descriptors are not available in the sandbox')
            elif (mode and any(c in mode for c in 'wax+')) or (flags or 0) & WRITE_FLAGS:
                raise PermissionError('writing files is not allowed in the sandbox')
            elif not str(path).startswith(('/lib/python', '/usr/lib/python')) and str(path) not in ('/dev/stdin',):
                raise PermissionError(f'reading {path!r} is not allowed in the sandbox')
        elif event in ('object.__getattr__', 'object.__delattr__', 'object.__setattr__'):
            if event == 'object.__getattr__':
                if args[1] in FRAMES:
                    raise PermissionError(f'{args[1]} is not available in the sandbox')
            elif isinstance(args[0], type) and getattr(args[0], '__module__', None) != '__main__':
                raise PermissionError(f'changing {args[0].__name__} is not allowed in the sandbox')
        elif event.startswith(REFUSED_EVENTS):
            raise PermissionError(f'{event} is not allowed in the sandbox')

    # Cut the bridges to the host before the first program: no module, class or closure keeps a
    # JavaScript object the program could find (pyodide's own asyncio glue holds some).
    from pyodide.ffi import JsProxy
    scrubbed = set()
    def scrub(owner, items, put):
        for k, v in items:
            if isinstance(v, JsProxy):
                put(owner, k, None)
            elif isinstance(v, type) and id(v) not in scrubbed:
                scrubbed.add(id(v))
                try:
                    scrub(v, list(vars(v).items()), setattr)
                except (TypeError, AttributeError):
                    pass
            elif isinstance(v, types.FunctionType):
                for cell in v.__closure__ or ():
                    try:
                        if isinstance(cell.cell_contents, JsProxy):
                            cell.cell_contents = None
                    except ValueError:
                        pass
    for m in list(sys.modules.values()):
        if isinstance(m, types.ModuleType):
            scrub(m.__dict__, list(m.__dict__.items()), dict.__setitem__)
    del JsProxy
    for name in list(sys.modules):
        if name.split('.')[0] in BRIDGES:
            del sys.modules[name]
    sys.meta_path[:] = [f for f in sys.meta_path if 'pyodide' not in type(f).__module__ and type(f).__name__ != 'JsFinder']

    def refuse(*a, **k):
        raise PermissionError('not allowed in the sandbox')
    for mod in (os, posix):
        for name in ('_exit', 'abort', 'system', 'popen', 'kill', 'killpg', 'fork', 'forkpty', 'execv', 'execve',
                     'spawnv', 'spawnve', 'posix_spawn', 'posix_spawnp'):
            if hasattr(mod, name):
                setattr(mod, name, refuse)
    RECURSION = 100_000
    sys.setrecursionlimit(RECURSION)

    # The state every run starts from.
    modules = dict(sys.modules)
    saved = {name: (m, dict(m.__dict__)) for name, m in modules.items() if isinstance(m, types.ModuleType)}
    lists = [(sys.meta_path, list(sys.meta_path)), (sys.path, list(sys.path)), (sys.path_hooks, list(sys.path_hooks)),
             (gc.callbacks, list(gc.callbacks))]
    caches = [(sys.path_importer_cache, dict(sys.path_importer_cache))]
    sigint = signal.getsignal(signal.SIGINT)
    missing = object()

    def restore():
        for name in [n for n in sys.modules if n not in modules]:
            del sys.modules[name]
        for name, m in modules.items():
            if sys.modules.get(name, missing) is not m:
                sys.modules[name] = m
        for name, (m, d) in saved.items():
            md = m.__dict__
            if len(md) != len(d) or any(md.get(k, missing) is not v for k, v in d.items()):
                md.clear()
                md.update(d)
        for live, copy in lists:
            if live != copy:
                live[:] = copy
        for live, copy in caches:
            if live != copy:
                live.clear()
                live.update(copy)
        signal.signal(signal.SIGINT, sigint)
        sys.setrecursionlimit(RECURSION)

    class OutputLimit(BaseException):
        pass

    class Sink(io.RawIOBase):
        def __init__(self, cap):
            self.parts, self.size, self.cap, self.over = [], 0, cap, False
        def writable(self):
            return True
        def write(self, b):
            n = len(b)
            if self.size + n > self.cap:
                self.parts.append(bytes(b[:max(0, self.cap - self.size)]))
                self.size, self.over = self.cap, True
                raise OutputLimit(f'output limit of {self.cap} bytes exceeded')
            self.parts.append(bytes(b))
            self.size += n
            return n

    def jsonable(o):
        if isinstance(o, (set, frozenset)):
            return sorted(o)
        raise TypeError(f'the result of type {type(o).__name__} is not JSON-like')

    def call(g, fn, args):
        f = g.get(fn)
        if not callable(f) and callable(g.get('Solution')) and callable(getattr(g['Solution'], fn, None)):
            f = getattr(g['Solution'](), fn)
        if not callable(f):
            raise NameError(f'no function named {fn}')
        return json.dumps(f(*args), default=jsonable)

    def describe(e):
        # Called while the hook is on (str(e) may run the program's code), so without the traceback's frames.
        try:
            text = f'{type(e).__name__}: {e}'
        except BaseException:
            text = type(e).__name__
        return text[:300]

    def compile_program(code):
        try:
            return compile(code, '<main>', 'exec')
        except BaseException as e:
            return describe(e)

    def run_test(program, stdin, fn, args_json, cap):
        if isinstance(program, str):
            return json.dumps({'status': 'error', 'detail': program})
        sink, err = Sink(cap), Sink(4096)
        out = io.TextIOWrapper(sink, encoding='utf-8', write_through=True)
        status, detail, result = 'ok', None, None
        g = {'__name__': '__main__', '__builtins__': builtins}
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding='utf-8')
        sys.stdout, sys.stderr = out, io.TextIOWrapper(err, encoding='utf-8', write_through=True)
        try:
            try:
                try:
                    exec(program, g)
                except SystemExit as e:
                    if e.code not in (None, 0):
                        status, detail = 'error', f'exit code {e.code}'
                if fn is not None and status == 'ok':
                    result = call(g, fn, json.loads(args_json))
            except OutputLimit:
                pass
            except KeyboardInterrupt:
                status, detail = 'timeout', 'time limit exceeded'
            except MemoryError:
                status, detail = 'memory', 'MemoryError'
            except BaseException as e:
                status, detail = 'error', describe(e)
        except KeyboardInterrupt:  # a late interrupt while handling the above
            status, detail = 'timeout', 'time limit exceeded'
        # Cleanup is repeated if a late interrupt breaks it.
        while True:
            try:
                out.flush() if sink.size < cap else None
            except BaseException:
                pass
            try:
                g.clear()
                restore()
                break
            except KeyboardInterrupt:
                continue
        if sink.over:
            status, detail = 'fail', f'output limit of {cap} bytes exceeded'
        return json.dumps({'status': status, 'detail': detail, 'out': b''.join(sink.parts).decode('utf-8', 'replace'),
                           'result': result})

    # On from here for good: the runner itself does nothing the hook refuses, and objects the program
    # leaves behind may run code (finalizers) at any later time.
    sys.addaudithook(hook)
    active[0] = True
    return compile_program, run_test
`;
