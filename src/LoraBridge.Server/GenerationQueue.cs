using LoraBridge.Engine;

namespace LoraBridge.Server;

/// <summary>
/// One generation at a time: the model and LoRA weights are process-wide state, so jobs run strictly one after the
/// other, in arrival order (SemaphoreSlim queues waiters first-in first-out). Holds what <c>/progress</c> reports and
/// lets <c>/interrupt</c> cancel the running job (the engine restores the weights on cancellation) and <c>/skip</c>
/// cancel the batch being sampled (the job then goes on with a fresh token from <see cref="ContinueAfterSkip"/>).
/// </summary>
public sealed class GenerationQueue : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Lock _lock = new();
    private CancellationTokenSource? _current;
    private readonly List<CancellationTokenSource> _retired = [];
    private CancellationToken _stopping;
    private int _waiting;

    /// <summary>The running job's latest progress, or null when idle.</summary>
    public GenerationProgress? Progress { get; private set; }

    /// <summary>True while a job runs.</summary>
    public bool Busy { get; private set; }

    /// <summary>Jobs running or waiting.</summary>
    public int JobCount => Volatile.Read(ref _waiting);

    /// <summary>When the running job started (A1111's <c>job_timestamp</c>, yyyyMMddHHmmss).</summary>
    public string JobTimestamp { get; private set; } = "0";

    /// <summary>True when the running job was interrupted.</summary>
    public bool Interrupted { get; private set; }

    /// <summary>True between a <see cref="Skip"/> and the job's <see cref="ContinueAfterSkip"/>.</summary>
    public bool Skipped { get; private set; }

    /// <summary>Runs <paramref name="job"/> when every earlier job has finished.</summary>
    /// <param name="job">Gets a token cancelled by <see cref="Interrupt"/> or <paramref name="stopping"/>, and a progress sink.</param>
    /// <param name="stopping">The server's shutdown token.</param>
    public async Task<T> RunAsync<T>(Func<CancellationToken, IProgress<GenerationProgress>, Task<T>> job, CancellationToken stopping)
    {
        Interlocked.Increment(ref _waiting);
        try
        {
            await _gate.WaitAsync(stopping).ConfigureAwait(false);
            try
            {
                var cts = CancellationTokenSource.CreateLinkedTokenSource(stopping);
                lock (_lock)
                {
                    _current = cts;
                    _stopping = stopping;
                    Busy = true;
                    Interrupted = false;
                    Skipped = false;
                    Progress = null;
                    JobTimestamp = DateTime.Now.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture);
                }
                try
                {
                    return await job(cts.Token, new Sink(this)).ConfigureAwait(false);
                }
                finally
                {
                    lock (_lock)
                    {
                        _current?.Dispose();
                        foreach (var old in _retired) old.Dispose();
                        _retired.Clear();
                        _current = null;
                        Busy = false;
                        Skipped = false;
                        Progress = null;
                    }
                }
            }
            finally
            {
                _gate.Release();
            }
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
    }

    /// <summary>Cancels the running job, if any (A1111's <c>/interrupt</c>).</summary>
    /// <returns>True when a job was running.</returns>
    public bool Interrupt()
    {
        lock (_lock)
        {
            if (_current is null) return false;
            Interrupted = true;
            _current.Cancel();
            return true;
        }
    }

    /// <summary>Cancels the batch being sampled, if a job runs (A1111's <c>/skip</c>); the job decides how to go on.</summary>
    /// <returns>True when a job was running.</returns>
    public bool Skip()
    {
        lock (_lock)
        {
            if (_current is null) return false;
            Skipped = true;
            _current.Cancel();
            return true;
        }
    }

    /// <summary>
    /// Called by the running job after it stopped for <see cref="Skip"/>: a fresh token for the rest of the job
    /// (already cancelled when an interrupt came in meanwhile, so that one is not lost).
    /// </summary>
    /// <exception cref="InvalidOperationException">No job is running.</exception>
    public CancellationToken ContinueAfterSkip()
    {
        lock (_lock)
        {
            if (_current is null) throw new InvalidOperationException("no job is running");
            _retired.Add(_current);
            _current = CancellationTokenSource.CreateLinkedTokenSource(_stopping);
            Skipped = false;
            if (Interrupted) _current.Cancel();
            return _current.Token;
        }
    }

    /// <inheritdoc />
    public void Dispose() => _gate.Dispose();

    // Reported inline on the sampling thread: Progress<T> would post to the pool and could land after the job ended.
    private sealed class Sink(GenerationQueue queue) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value)
        {
            lock (queue._lock) if (queue.Busy) queue.Progress = value;
        }
    }
}
