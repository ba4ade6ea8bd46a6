using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Python.Runtime;

namespace LoraBridge.Python;

/// <summary>
/// The embedded CPython of this process: boots it once, runs every piece of Python work on one long-lived
/// dedicated thread fed by a queue, turns cancellation into <c>KeyboardInterrupt</c> and Python exceptions into
/// <see cref="PythonCallException"/>, and shuts the interpreter down cleanly.
/// </summary>
/// <remarks>
/// pythonnet (and torch) can initialize CPython only once per process, so there is at most one instance:
/// starting it a second time throws. The interpreter is initialized, used and finalized on the same
/// thread, which therefore is CPython's main thread.
/// </remarks>
public sealed class PythonRuntime : IDisposable
{
    private static readonly Lock s_startLock = new();
    private static PythonRuntime? s_current;
    private static bool s_bootFailed;

    private readonly BlockingCollection<WorkItem> _queue = new();
    private readonly Thread _thread;
    private readonly ILogger _logger;
    private readonly List<Action> _shutdownActions = [];
    // Serializes interrupt requests against finalization, so no thread takes the GIL of a finalized interpreter.
    private readonly Lock _interruptLock = new();
    private volatile WorkItem? _current;
    private TaskCompletionSource? _startup;
    private ulong _pythonThreadId;
    private bool _finalized;
    private int _disposed;

    /// <summary>The OpenMP environment variable that says whether idle worker threads spin or sleep.</summary>
    public const string OmpWaitPolicyVariable = "OMP_WAIT_POLICY";

    /// <summary>The wait policy torch's OpenMP threads get when the environment does not set one.</summary>
    public const string DefaultOmpWaitPolicy = "PASSIVE";

    /// <summary>The runtime started in this process, or null.</summary>
    public static PythonRuntime? Current { get { lock (s_startLock) return s_current; } }

    /// <summary>The interpreter that was booted.</summary>
    public PythonProbe Interpreter { get; }

    /// <summary>Folder on <c>sys.path</c> that holds the <c>lorabridge</c> package.</summary>
    public string PackageDir { get; }

    /// <summary>Threads torch was told to use.</summary>
    public int TorchThreads { get; }

    /// <summary>How long <see cref="Dispose"/> took to finalize the interpreter, once it has.</summary>
    public TimeSpan? ShutdownDuration { get; private set; }

    /// <summary>True when called on the Python thread (work may then call Python directly).</summary>
    public bool IsOnPythonThread => Thread.CurrentThread == _thread;

    private PythonRuntime(PythonProbe interpreter, string packageDir, int torchThreads, ILogger logger)
    {
        Interpreter = interpreter;
        PackageDir = packageDir;
        TorchThreads = torchThreads;
        _logger = logger;
        _thread = new Thread(ThreadMain) { IsBackground = true, Name = "python" };
    }

    /// <summary>Discovers an interpreter (see <see cref="PythonDiscovery"/>) and boots it.</summary>
    /// <exception cref="PythonRuntimeUnavailableException">No usable interpreter, or booting failed.</exception>
    public static async Task<PythonRuntime> StartAsync(PythonRuntimeOptions options, ILogger? logger = null, CancellationToken ct = default)
    {
        var report = await new PythonDiscovery(options).DiscoverAsync(ct).ConfigureAwait(false);
        return Start(report, options, logger);
    }

    /// <summary>Boots the winner of a discovery report.</summary>
    /// <exception cref="PythonRuntimeUnavailableException">The report has no winner, or booting failed.</exception>
    public static PythonRuntime Start(DiscoveryReport report, PythonRuntimeOptions options, ILogger? logger = null)
    {
        var winner = report.Winner ?? throw new PythonRuntimeUnavailableException(
            "No usable Python found (need CPython 3.10–3.13 with a shared libpython and torch). Candidates:" +
            Environment.NewLine + report.Describe() + "Run `lorabridge doctor` for the commands that install what is missing.", report);
        logger ??= NullLogger.Instance;
        logger.LogDebug("Python discovery:{NewLine}{Report}", Environment.NewLine, report.Describe());
        return Start(winner.Probe!, options, logger);
    }

    /// <summary>Boots a specific probed interpreter.</summary>
    /// <exception cref="InvalidOperationException">A runtime was already started in this process.</exception>
    /// <exception cref="PythonRuntimeUnavailableException">Booting or the first imports failed.</exception>
    public static PythonRuntime Start(PythonProbe interpreter, PythonRuntimeOptions options, ILogger? logger = null)
    {
        logger ??= NullLogger.Instance;
        if (interpreter.LibPython is null)
            throw new PythonRuntimeUnavailableException($"{interpreter.Executable} has no shared libpython; it cannot be embedded.");
        var packageDir = LocatePackageDir(options.PackageDir);
        lock (s_startLock)
        {
            if (s_current is not null)
                throw new InvalidOperationException(
                    "The Python runtime was already started in this process; CPython and torch can be initialized only once. Reuse PythonRuntime.Current.");
            if (s_bootFailed)
                throw new InvalidOperationException("Booting Python failed earlier in this process and CPython cannot be initialized twice; restart the process.");
            var rt = new PythonRuntime(interpreter, packageDir, options.EffectiveTorchThreads, logger);
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            rt._startup = started;
            rt._thread.Start();
            try
            {
                started.Task.GetAwaiter().GetResult();
            }
            catch (Exception ex)
            {
                s_bootFailed = true;
                if (ex is PythonRuntimeUnavailableException) throw;
                throw new PythonRuntimeUnavailableException($"Booting {interpreter.Executable} ({interpreter.LibPython}) failed: {ex.Message}");
            }
            s_current = rt;
            return rt;
        }
    }

    /// <summary>
    /// Finds the folder holding <c>lorabridge/bridge.py</c>: the configured one, else <c>&lt;app dir&gt;/python</c>
    /// (the CLI ships it there), else <c>python/</c> in the nearest parent of the app dir (tests and benchmarks in the repository).
    /// </summary>
    public static string LocatePackageDir(string? configured)
    {
        static bool Has(string dir) => File.Exists(Path.Combine(dir, "lorabridge", "bridge.py"));
        if (!string.IsNullOrWhiteSpace(configured))
        {
            var full = Path.GetFullPath(configured);
            return Has(full) ? full : throw new PythonRuntimeUnavailableException(
                $"LoraBridge:Python:PackageDir is {full}, but {Path.Combine(full, "lorabridge", "bridge.py")} does not exist.");
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "python");
            if (Has(candidate)) return candidate;
        }
        throw new PythonRuntimeUnavailableException(
            $"The lorabridge Python package (python/lorabridge/bridge.py) was not found beside {AppContext.BaseDirectory} or in any parent folder.");
    }

    /// <summary>
    /// Adds work to run on the Python thread, with the GIL held, after the interpreter has finalized nothing else.
    /// Used to drop Python objects and handles before shutdown (Python's atexit handlers do not run when embedded).
    /// </summary>
    public void AddShutdownAction(Action action)
    {
        lock (_shutdownActions) _shutdownActions.Add(action);
    }

    /// <summary>
    /// Runs <paramref name="work"/> on the Python thread with the GIL held and returns its result.
    /// Cancelling <paramref name="ct"/> while it runs raises <c>KeyboardInterrupt</c> in the Python code, and the task
    /// ends as cancelled; a Python exception ends it with <see cref="PythonCallException"/>.
    /// The result must be a .NET value: Python objects must not leave the Python thread.
    /// </summary>
    public Task<T> InvokeAsync<T>(Func<T> work, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (ct.IsCancellationRequested) return Task.FromCanceled<T>(ct);
        var item = new WorkItem<T>(work, ct);
        if (IsOnPythonThread)
        {
            // Re-entrant call from Python-thread work: queuing it would wait on ourselves forever.
            item.RunInline();
            return item.Task;
        }
        if (_nested is { } nested)
        {
            // The Python thread is waiting for C# code it called (WaitOnPythonThread): that code's calls run there.
            try
            {
                nested.Add(item, CancellationToken.None);
                return item.Task;
            }
            catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
            {
                // The wait just ended: the main queue takes it.
            }
        }
        try
        {
            _queue.Add(item, CancellationToken.None);
        }
        catch (InvalidOperationException)
        {
            throw new ObjectDisposedException(nameof(PythonRuntime));
        }
        return item.Task;
    }

    // Work posted from other threads while the Python thread waits in WaitOnPythonThread; null otherwise.
    private volatile BlockingCollection<WorkItem>? _nested;

    /// <summary>
    /// Waits, on the Python thread, for <paramref name="task"/>: C# code that Python called back (an extension hook
    /// inside a sampler step) and that may itself call Python. Python work posted meanwhile from any thread runs here,
    /// in order, until the task ends, so the awaited code cannot deadlock on the thread that waits for it. Rethrows
    /// the task's exception.
    /// </summary>
    /// <exception cref="InvalidOperationException">Called from another thread.</exception>
    public void WaitOnPythonThread(Task task)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (!IsOnPythonThread) throw new InvalidOperationException("WaitOnPythonThread is only valid on the Python thread.");
        if (!task.IsCompleted)
        {
            var outer = _nested;
            var nested = new BlockingCollection<WorkItem>();
            _nested = nested;
            task.ContinueWith(static (_, n) => ((BlockingCollection<WorkItem>)n!).CompleteAdding(), nested, CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            try
            {
                // Ends once the task is done and everything posted before that has run.
                foreach (var item in nested.GetConsumingEnumerable()) item.RunNested();
            }
            finally
            {
                _nested = outer;
            }
        }
        task.GetAwaiter().GetResult();
    }

    /// <summary>Runs <paramref name="work"/> on the Python thread; see <see cref="InvokeAsync{T}(Func{T}, CancellationToken)"/>.</summary>
    public Task InvokeAsync(Action work, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        return InvokeAsync(() => { work(); return true; }, ct);
    }

    private void ThreadMain()
    {
        IntPtr threadState;
        try
        {
            var sw = Stopwatch.StartNew();
            // torch reads OMP/MKL settings from the native environment when it loads; .NET's
            // Environment.SetEnvironmentVariable does not reach it on Unix.
            var threads = TorchThreads.ToString(System.Globalization.CultureInfo.InvariantCulture);
            foreach (var name in new[] { "OMP_NUM_THREADS", "MKL_NUM_THREADS" })
            {
                NativeEnvironment.Set(name, threads);
                Environment.SetEnvironmentVariable(name, threads);
            }
            // OpenMP workers that wait between parallel regions sleep instead of spinning (unless the user chose a
            // policy). Spinning pays off only on an otherwise idle machine: on a busy one (measured at load 6–15 on 2
            // cores) the spinning worker holds the core its partner needs, and a 64x64 step took 0.2–4 s instead of
            // 20–50 ms. The split of work between threads is unchanged, so images are the same bytes.
            if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(OmpWaitPolicyVariable)))
            {
                NativeEnvironment.Set(OmpWaitPolicyVariable, DefaultOmpWaitPolicy);
                Environment.SetEnvironmentVariable(OmpWaitPolicyVariable, DefaultOmpWaitPolicy);
            }
            // Order matters: the DLL first, then ProgramName as given so CPython reads a venv's pyvenv.cfg
            // (sys.prefix, site-packages, .pth files), then no signal handlers (the host owns Ctrl+C).
            Runtime.PythonDLL = Interpreter.LibPython;
            PythonEngine.ProgramName = Interpreter.Executable;
            PythonEngine.Initialize(setSysArgv: true, initSigs: false);
            _pythonThreadId = PythonEngine.GetPythonThreadID();
            using (var sys = Py.Import("sys"))
            using (var path = sys.GetAttr("path"))
            using (var dir = new PyString(PackageDir))
            {
                path.InvokeMethod("insert", new PyInt(0), dir).Dispose();
            }
            using (var torch = Py.Import("torch"))
            using (var n = new PyInt(TorchThreads))
            {
                torch.InvokeMethod("set_num_threads", n).Dispose();
            }
            // The objects importing torch made (modules, classes, functions: ~0.4 M) live as long as the interpreter.
            // Moved out of the collector's generations, they are no longer walked by every full collection, which
            // otherwise lands in a random later call (measured: a 64x64 decode 30 → 80–100 ms when one fell there).
            using (var gc = Py.Import("gc"))
            {
                gc.InvokeMethod("freeze").Dispose();
            }
            // Release the GIL at once but keep this thread's state, so each work item re-enters cheaply.
            threadState = PythonEngine.BeginAllowThreads();
            _logger.LogDebug("Python {Version} booted from {Exe} ({Lib}) in {Ms} ms; torch threads {Threads}",
                Interpreter.Version, Interpreter.Executable, Interpreter.LibPython, sw.ElapsedMilliseconds, TorchThreads);
        }
        catch (Exception ex)
        {
            var message = ex is PythonException pe ? $"{pe.Type.Name}: {pe.Message}" : ex.Message;
            // This thread holds the GIL of an initialized interpreter (e.g. torch failed to import): finalize it here,
            // or pythonnet's process-exit shutdown waits forever for a GIL no living thread can release.
            if (PythonEngine.IsInitialized)
            {
                try { PythonEngine.Shutdown(); }
                catch (Exception shutdownError) { _logger.LogDebug("shutdown after a failed boot: {Message}", shutdownError.Message); }
            }
            _startup!.SetException(new PythonRuntimeUnavailableException(
                $"Booting {Interpreter.Executable} ({Interpreter.LibPython}) failed: {message}"));
            return;
        }
        _startup!.SetResult();

        foreach (var item in _queue.GetConsumingEnumerable())
        {
            if (Volatile.Read(ref _disposed) != 0) item.Abandon();
            else item.Run(this);
        }
        FinalizeInterpreter(threadState);
    }

    private void FinalizeInterpreter(IntPtr threadState)
    {
        var sw = Stopwatch.StartNew();
        lock (_interruptLock) _finalized = true;
        PythonEngine.EndAllowThreads(threadState);
        Action[] actions;
        lock (_shutdownActions) actions = [.. _shutdownActions];
        foreach (var action in actions)
        {
            try { action(); }
            catch (Exception ex) { _logger.LogWarning(ex, "A Python shutdown action failed"); }
        }
        try
        {
            // Without this, finalizing with torch loaded takes seconds (measured 3.4 s → 70 ms):
            // freezing leaves the surviving objects to the OS instead of walking them one by one.
            // No gc.collect() first: it walked every object torch made (160–190 ms measured on the demo model) only
            // to free memory the process is about to return, and pythonnet's shutdown collects what is not frozen.
            using var gc = Py.Import("gc");
            gc.InvokeMethod("freeze").Dispose();
        }
        catch (PythonException ex)
        {
            _logger.LogWarning("gc before shutdown failed: {Message}", ex.Message);
        }
        PythonEngine.Shutdown();
        ShutdownDuration = sw.Elapsed;
        _logger.LogDebug("Python runtime shut down in {Ms} ms", sw.ElapsedMilliseconds);
    }

    /// <summary>Posts <c>KeyboardInterrupt</c> to the Python thread if <paramref name="item"/> is still running.</summary>
    private void RequestInterrupt(WorkItem item)
    {
        // Off the cancelling thread: taking the GIL can wait for the running Python code to yield it.
        ThreadPool.UnsafeQueueUserWorkItem(_ =>
        {
            lock (_interruptLock)
            {
                if (_finalized || _current != item) return;
                using (Py.GIL())
                {
                    // Holding the GIL, the Python thread is parked inside Python code (or between items); if the
                    // item is still current, the exception lands in its code and nowhere else.
                    if (_current != item) return;
                    item.InterruptPosted = true;
                    PythonEngine.Interrupt(_pythonThreadId);
                }
            }
        }, null);
    }

    /// <summary>
    /// Interrupts running work, finishes the queue (pending items fail with <see cref="ObjectDisposedException"/>),
    /// then finalizes the interpreter on its own thread. Waits at most 10 s, so it never hangs the process.
    /// </summary>
    public void Dispose()
    {
        if (IsOnPythonThread)
            throw new InvalidOperationException("The Python runtime cannot be disposed from its own thread (it would wait for itself).");
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _queue.CompleteAdding();
        if (_current is { } running) RequestInterrupt(running);
        if (!_thread.Join(TimeSpan.FromSeconds(10)))
        {
            // The thread still reads the queue: disposing it now would throw on that thread and abort the process.
            _logger.LogWarning("The Python thread did not finish within 10 s; leaving it to process exit.");
            return;
        }
        _queue.Dispose();
    }

    private abstract class WorkItem
    {
        /// <summary>Set (under the GIL) when a KeyboardInterrupt was posted for this item.</summary>
        public bool InterruptPosted;
        public abstract void Run(PythonRuntime rt);
        public abstract void Abandon();
        /// <summary>Runs on the Python thread inside other work that holds the GIL (no interrupt of its own).</summary>
        public abstract void RunNested();
    }

    private sealed class WorkItem<T>(Func<T> work, CancellationToken ct) : WorkItem
    {
        private readonly TaskCompletionSource<T> _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Task<T> Task => _tcs.Task;

        public override void Abandon() => _tcs.TrySetException(new ObjectDisposedException(nameof(PythonRuntime), "The Python runtime shut down before this work ran."));

        public override void RunNested()
        {
            if (ct.IsCancellationRequested) { _tcs.TrySetCanceled(ct); return; }
            RunInline();
        }

        public void RunInline()
        {
            // Inline work may come from C# that Python called: pythonnet releases the GIL around such calls.
            using var gil = Py.GIL();
            try { _tcs.TrySetResult(work()); }
            catch (PythonException ex) { _tcs.TrySetException(Map(ex)); }
            catch (Exception ex) { _tcs.TrySetException(ex); }
        }

        public override void Run(PythonRuntime rt)
        {
            if (ct.IsCancellationRequested) { _tcs.TrySetCanceled(ct); return; }
            using (Py.GIL())
            {
                rt._current = this;
                var registration = ct.Register(static s => { var (r, i) = ((PythonRuntime, WorkItem))s!; r.RequestInterrupt(i); }, (rt, (WorkItem)this));
                bool interrupted = false;
                try
                {
                    _tcs.TrySetResult(work());
                }
                catch (PythonException ex) when (InterruptPosted && ex.Type.Name == "KeyboardInterrupt")
                {
                    interrupted = true;
                    if (ct.IsCancellationRequested) _tcs.TrySetCanceled(ct);
                    else _tcs.TrySetException(new ObjectDisposedException(nameof(PythonRuntime), "The Python runtime shut down while this work ran."));
                }
                catch (PythonException ex)
                {
                    _tcs.TrySetException(Map(ex));
                }
                catch (Exception ex)
                {
                    _tcs.TrySetException(ex);
                }
                finally
                {
                    registration.Dispose();
                    rt._current = null;
                    if (InterruptPosted && !interrupted) ClearPendingInterrupt(rt._pythonThreadId);
                }
            }
        }

        private static PythonCallException Map(PythonException ex)
        {
            string type = "Exception", traceback = "";
            try
            {
                type = ex.Type.Name;
                traceback = ex.Format();
            }
            catch (Exception formatError) when (formatError is PythonException or InvalidOperationException)
            {
                traceback = ex.StackTrace ?? "";
            }
            var message = ex.Message;
            return new PythonCallException(type, message, traceback);
        }
    }

    // The work finished before the posted KeyboardInterrupt was delivered; withdraw it so it cannot hit the next item.
    private static void ClearPendingInterrupt(ulong threadId)
    {
        try
        {
            using var ctypes = Py.Import("ctypes");
            using var api = ctypes.GetAttr("pythonapi");
            using var fn = api.GetAttr("PyThreadState_SetAsyncExc");
            using var tid = ctypes.InvokeMethod("c_ulong", new PyInt((long)threadId));
            fn.Invoke(tid, PyObject.None).Dispose();
        }
        catch (PythonException)
        {
            // The pending KeyboardInterrupt fired inside this very code: delivered, so it is gone, which is the goal.
        }
    }

    private static class NativeEnvironment
    {
        [DllImport("libc", EntryPoint = "setenv", SetLastError = true)]
        private static extern int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);

        public static void Set(string name, string value)
        {
            if (OperatingSystem.IsWindows()) return;
            if (SetEnv(name, value, 1) != 0)
                throw new InvalidOperationException($"setenv({name}) failed with errno {Marshal.GetLastPInvokeError()}");
        }
    }
}
