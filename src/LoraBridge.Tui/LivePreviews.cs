using LoraBridge.Engine;
using LoraBridge.Python;

namespace LoraBridge.Tui;

/// <summary>One live preview as the bridge made it.</summary>
/// <param name="Image">The pixels (latent size for Approx cheap, image size for TAESD).</param>
/// <param name="Taesd">True when the TAESD decoder made it.</param>
/// <param name="Note">Why it was not made as asked (TAESD file missing or unusable); null otherwise.</param>
public sealed record LiveFrame(RgbImage Image, bool Taesd, string? Note);

/// <summary>What a job's live previews are asked for with: A1111's "Live preview method" and where TAESD files may be.</summary>
/// <param name="Method">The preview method.</param>
/// <param name="ModelsDirs"><c>models</c> folders whose <c>VAE-approx</c> is searched (<see cref="UpscalerLocations.ModelsDirs"/>).</param>
public sealed record LivePreviewRequest(PreviewMethod Method, IReadOnlyList<string> ModelsDirs);

/// <summary>
/// Wraps a job's progress so that each reported step also asks for a live preview and hands it to an
/// <see cref="IPreviewSink"/>. At most one preview is in flight: when previews are slower than steps they skip steps
/// instead of piling up in the Python queue (so they never slow sampling down by more than one call per step).
/// </summary>
public sealed class LivePreviews : IProgress<GenerationProgress>
{
    private readonly IProgress<GenerationProgress>? _inner;
    private readonly IPreviewSink _sink;
    private readonly Func<CancellationToken, Task<LiveFrame?>> _source;
    private readonly CancellationToken _ct;
    private int _pending;

    /// <summary>Creates the wrapper.</summary>
    /// <param name="inner">The job's own progress (still receives every report).</param>
    /// <param name="sink">Receives the previews.</param>
    /// <param name="source">Computes a preview of the running job (null when nothing is sampling).</param>
    /// <param name="ct">The job's cancellation.</param>
    public LivePreviews(IProgress<GenerationProgress>? inner, IPreviewSink sink, Func<CancellationToken, Task<LiveFrame?>> source, CancellationToken ct)
    {
        _inner = inner;
        _sink = sink;
        _source = source;
        _ct = ct;
    }

    /// <summary>Previews asked for so far.</summary>
    public int Requested { get; private set; }

    /// <summary>The first note of a preview not made as asked (e.g. TAESD chosen but its file missing); null when none.</summary>
    public string? Note { get; private set; }

    /// <summary>The first preview failure (previews are best effort: the job goes on without them).</summary>
    public Exception? Failure { get; private set; }

    /// <inheritdoc/>
    public void Report(GenerationProgress value)
    {
        _inner?.Report(value);
        if (Failure is not null || Interlocked.Exchange(ref _pending, 1) == 1) return;
        Requested++;
        Task<LiveFrame?> task;
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
            if (t.IsCompletedSuccessfully && t.Result is { } frame)
            {
                Note ??= frame.Note;
                _sink.Preview(frame.Image, value.Step, value.TotalSteps, frame.Taesd);
            }
            else if (t.IsFaulted) Failure ??= t.Exception!.GetBaseException();
            Volatile.Write(ref _pending, 0);
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>The preview source over the Python bridge: the running latent by the request's method (python/lorabridge/preview.py).</summary>
    public static Func<LivePreviewRequest, CancellationToken, Task<LiveFrame?>> FromBridge(PythonBridge bridge) => async (request, ct) =>
        await bridge.LatentPreviewAsync(request.Method, request.ModelsDirs, ct).ConfigureAwait(false) is { } p
            ? new LiveFrame(new RgbImage(p.Image.Width, p.Image.Height, p.Image.Pixels), p.UsedTaesd, p.Note)
            : null;
}
