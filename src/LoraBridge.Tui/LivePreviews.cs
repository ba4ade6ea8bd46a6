using LoraBridge.Engine;
using LoraBridge.Python;

namespace LoraBridge.Tui;

/// <summary>
/// Wraps a job's progress so that each reported step also asks for a live preview and hands it to an
/// <see cref="IPreviewSink"/>. At most one preview is in flight: when previews are slower than steps they skip steps
/// instead of piling up in the Python queue (so they never slow sampling down by more than one call per step).
/// </summary>
public sealed class LivePreviews : IProgress<GenerationProgress>
{
    private readonly IProgress<GenerationProgress>? _inner;
    private readonly IPreviewSink _sink;
    private readonly Func<CancellationToken, Task<RgbImage?>> _source;
    private readonly CancellationToken _ct;
    private int _pending;

    /// <summary>Creates the wrapper.</summary>
    /// <param name="inner">The job's own progress (still receives every report).</param>
    /// <param name="sink">Receives the previews.</param>
    /// <param name="source">Computes a preview of the running job (null when nothing is sampling).</param>
    /// <param name="ct">The job's cancellation.</param>
    public LivePreviews(IProgress<GenerationProgress>? inner, IPreviewSink sink, Func<CancellationToken, Task<RgbImage?>> source, CancellationToken ct)
    {
        _inner = inner;
        _sink = sink;
        _source = source;
        _ct = ct;
    }

    /// <summary>Previews asked for so far.</summary>
    public int Requested { get; private set; }

    /// <summary>The first preview failure (previews are best effort: the job goes on without them).</summary>
    public Exception? Failure { get; private set; }

    /// <inheritdoc/>
    public void Report(GenerationProgress value)
    {
        _inner?.Report(value);
        if (Failure is not null || Interlocked.Exchange(ref _pending, 1) == 1) return;
        Requested++;
        Task<RgbImage?> task;
        try
        {
            task = _source(_ct);
        }
        catch (Exception ex)
        {
            Failure = ex;
            Volatile.Write(ref _pending, 0);
            return;
        }
        task.ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully && t.Result is { } image) _sink.Preview(image, value.Step, value.TotalSteps);
            else if (t.IsFaulted) Failure ??= t.Exception!.GetBaseException();
            Volatile.Write(ref _pending, 0);
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>The preview source over the Python bridge (A1111's "Approx cheap" on the running latent).</summary>
    public static Func<CancellationToken, Task<RgbImage?>> FromBridge(PythonBridge bridge) => async ct =>
        await bridge.LatentPreviewAsync(ct).ConfigureAwait(false) is { } p ? new RgbImage(p.Width, p.Height, p.Pixels) : null;
}
