using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace LoraBridge.Python;

/// <summary>
/// Discovers and boots the embedded Python on first use, not when a command starts: commands that never call
/// Python (<c>prompt</c>, <c>loras</c>, <c>info</c>, …) never pay for it, and a command that will need it can
/// <see cref="StartBooting"/> early and do its own C# work while the interpreter and torch load on their thread.
/// </summary>
/// <remarks>
/// Discovery uses the verdict cache (<see cref="DiscoveryCache"/>). A cached winner whose libpython no longer loads
/// is dropped before anything is initialized and discovery runs again, in this process. A cached winner that fails
/// later in the boot (after CPython was initialized, which can happen only once per process) is dropped too, and the
/// exception says so (<see cref="PythonRuntimeUnavailableException.CacheWasStale"/>), so a caller can start afresh.
/// </remarks>
public sealed class PythonRuntimeProvider(PythonDiscovery discovery, PythonRuntimeOptions options, ILogger? logger = null) : IDisposable
{
    private readonly Lock _lock = new();
    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private Task<PythonRuntime>? _boot;
    private bool _disposed;

    /// <summary>The discovery this provider boots from.</summary>
    public PythonDiscovery Discovery => discovery;

    /// <summary>True once booting was asked for (it may still be running or have failed).</summary>
    public bool BootRequested { get { lock (_lock) return _boot is not null; } }

    /// <summary>The runtime when it has booted, else null (never waits).</summary>
    public PythonRuntime? Started { get { lock (_lock) return _boot is { IsCompletedSuccessfully: true } b ? b.Result : null; } }

    /// <summary>Time spent in discovery (cache look-ups or probes), once booting got that far.</summary>
    public TimeSpan? DiscoveryDuration { get; private set; }

    /// <summary>Time from the winner being known to the runtime being ready (CPython, torch, thread set-up).</summary>
    public TimeSpan? BootDuration { get; private set; }

    /// <summary>The discovery report the runtime was booted from, once known.</summary>
    public DiscoveryReport? Report { get; private set; }

    /// <summary>Begins discovery and boot on a worker thread, if not begun already; returns at once.</summary>
    public void StartBooting()
    {
        var task = GetAsync();
        // Failures surface at the first real use; observe them here so an unused failed boot is not reported as unobserved.
        task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>The runtime, discovering and booting it on the first call; later calls share that one boot.</summary>
    /// <exception cref="PythonRuntimeUnavailableException">No usable interpreter, or booting failed.</exception>
    public Task<PythonRuntime> GetAsync()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _boot ??= Task.Run(BootAsync);
        }
    }

    /// <summary>Blocking <see cref="GetAsync"/>.</summary>
    public PythonRuntime Get() => GetAsync().GetAwaiter().GetResult();

    private async Task<PythonRuntime> BootAsync()
    {
        var sw = Stopwatch.StartNew();
        _logger.LogDebug("Python discovery started (cache: {Cache})", discovery.Cache?.File ?? "off");
        var report = await discovery.GetReportAsync().ConfigureAwait(false);
        if (report.Winner is { FromCache: true } cached && !CanLoad(cached.Probe?.LibPython))
        {
            // Nothing is initialized yet, so discovering again in this process is safe.
            _logger.LogDebug("cached Python {Path}: libpython {Lib} does not load; probing again", cached.Path, cached.Probe?.LibPython);
            report = await discovery.RediscoverAsync(cached.Path).ConfigureAwait(false);
        }
        DiscoveryDuration = sw.Elapsed;
        Report = report;
        _logger.LogDebug("Python discovery took {Ms} ms ({How})", sw.ElapsedMilliseconds,
            report.UsedCache ? "cached verdicts" : "probed");
        sw.Restart();
        try
        {
            var rt = PythonRuntime.Start(report, options, _logger);
            BootDuration = sw.Elapsed;
            return rt;
        }
        catch (PythonRuntimeUnavailableException ex) when (report.Winner is { FromCache: true } stale)
        {
            // CPython may already be initialized by now and cannot be again in this process: forget the verdict so
            // the next start probes, and tell the caller.
            var fresh = await discovery.RediscoverAsync(stale.Path).ConfigureAwait(false);
            throw new PythonRuntimeUnavailableException(
                $"{ex.Message}{Environment.NewLine}The cached choice {stale.Path} was dropped and discovery ran again: " +
                (fresh.Winner is { } w ? $"it now chooses {w.Path}; start again to use it." : "nothing is usable."), fresh)
            { CacheWasStale = true };
        }
    }

    /// <summary>Whether the shared library loads in this process (a cheap check before CPython is initialized).</summary>
    public static bool CanLoad(string? library)
    {
        if (library is null || !File.Exists(library)) return false;
        if (!NativeLibrary.TryLoad(library, out var handle)) return false;
        // Left loaded: pythonnet loads the same file next, and unloading libpython is never safe.
        GC.KeepAlive(handle);
        return true;
    }

    /// <summary>Shuts the runtime down when it was started.</summary>
    public void Dispose()
    {
        Task<PythonRuntime>? boot;
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            boot = _boot;
        }
        if (boot is null) return;
        try
        {
            // A boot still running is waited for: the interpreter must be finalized on its own thread, not abandoned mid-start.
            boot.Wait();
        }
        catch (AggregateException)
        {
            return;
        }
        boot.Result.Dispose();
    }
}
