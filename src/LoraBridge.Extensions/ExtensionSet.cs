using LoraBridge.Engine;

namespace LoraBridge.Extensions;

/// <summary>
/// The loaded extensions, as one set of <see cref="IGenerationHooks"/> for the engine: each hook calls every extension
/// in load order, and <see cref="BeforeJobAsync"/> passes each one's rewritten request to the next.
/// Disposing unloads the extensions' assemblies.
/// </summary>
public sealed class ExtensionSet : IGenerationHooks, ISamplingHooks, IImageSaveHooks, IModelCallHooks, IBatchHooks, IDisposable
{
    private IReadOnlyList<ILoraBridgeExtension> _afterStep;
    private IReadOnlyList<ILoraBridgeExtension> _afterCfg;
    private IReadOnlyList<ILoraBridgeExtension> _beforeSave;
    private IReadOnlyList<ILoraBridgeExtension> _beforeModel;
    private IReadOnlyList<ILoraBridgeExtension> _beforeBatch;
    private IReadOnlyList<ILoraBridgeExtension> _afterBatch;

    internal ExtensionSet(IReadOnlyList<ExtensionUnit> units)
    {
        Units = units;
        Extensions = units.SelectMany(u => u.Extensions).ToList();
        _afterStep = Subscribed(nameof(ILoraBridgeExtension.AfterStepAsync));
        _afterCfg = Subscribed(nameof(ILoraBridgeExtension.AfterCfgAsync));
        _beforeSave = Subscribed(nameof(ILoraBridgeExtension.BeforeImageSavedAsync));
        _beforeModel = Subscribed(nameof(ILoraBridgeExtension.BeforeModelCallAsync));
        _beforeBatch = Subscribed(nameof(ILoraBridgeExtension.BeforeBatchAsync));
        _afterBatch = Subscribed(nameof(ILoraBridgeExtension.AfterBatchAsync));
    }

    /// <summary>
    /// The extensions that implement <paramref name="hook"/> themselves (not the interface's do-nothing default): only
    /// they are called, and a hook nobody implements leaves the engine on its fast path.
    /// </summary>
    private List<ILoraBridgeExtension> Subscribed(string hook) => Extensions.Where(e =>
    {
        var map = e.GetType().GetInterfaceMap(typeof(ILoraBridgeExtension));
        int i = Array.FindIndex(map.InterfaceMethods, m => m.Name == hook);
        return i >= 0 && map.TargetMethods[i].DeclaringType != typeof(ILoraBridgeExtension);
    }).ToList();

    /// <inheritdoc />
    public bool HasAfterCfg => _afterCfg.Count > 0;

    /// <inheritdoc />
    public bool HasAfterStep => _afterStep.Count > 0;

    /// <inheritdoc />
    public bool HasBeforeImageSaved => _beforeSave.Count > 0;

    /// <inheritdoc />
    public ValueTask AfterCfgAsync(CfgStep step, CancellationToken ct) =>
        RunEach(_afterCfg, nameof(AfterCfgAsync), e => e.AfterCfgAsync(step, ct), ct, interruptsPython: true);

    /// <inheritdoc />
    public bool HasBeforeModelCall => _beforeModel.Count > 0;

    /// <inheritdoc />
    public bool HasBatchHooks => _beforeBatch.Count > 0 || _afterBatch.Count > 0;

    /// <inheritdoc />
    public ValueTask BeforeModelCallAsync(DenoiserStep step, CancellationToken ct) =>
        RunEach(_beforeModel, nameof(BeforeModelCallAsync), e => e.BeforeModelCallAsync(step, ct), ct, interruptsPython: true);

    /// <inheritdoc />
    public ValueTask BeforeBatchAsync(BatchStart batch, CancellationToken ct) =>
        RunEach(_beforeBatch, nameof(BeforeBatchAsync), e => e.BeforeBatchAsync(batch, ct), ct);

    /// <inheritdoc />
    public ValueTask AfterBatchAsync(BatchDone batch, CancellationToken ct) =>
        RunEach(_afterBatch, nameof(AfterBatchAsync), e => e.AfterBatchAsync(batch, ct), ct);

    /// <inheritdoc />
    public ValueTask BeforeImageSavedAsync(ImageToSave image, CancellationToken ct) =>
        RunEach(_beforeSave, nameof(BeforeImageSavedAsync), async e =>
        {
            await e.BeforeImageSavedAsync(image, ct).ConfigureAwait(false);
            image.Validate(); // a bad change is this extension's
        }, ct);

    /// <summary>Every unit found, loaded or not.</summary>
    public IReadOnlyList<ExtensionUnit> Units { get; }

    /// <summary>The extensions that loaded, in hook order.</summary>
    public IReadOnlyList<ILoraBridgeExtension> Extensions { get; private set; }

    /// <inheritdoc />
    public async ValueTask<GenerationRequest> BeforeJobAsync(GenerationRequest request, CancellationToken ct)
    {
        foreach (var e in Extensions)
        {
            try
            {
                request = await e.BeforeJobAsync(request, ct).ConfigureAwait(false)
                    ?? throw new InvalidOperationException("returned no request");
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new ExtensionException(e.Name, nameof(BeforeJobAsync), ex);
            }
        }
        return request;
    }

    /// <inheritdoc />
    public ValueTask AfterStepAsync(GenerationProgress progress, CancellationToken ct) =>
        RunEach(_afterStep, nameof(AfterStepAsync), e => e.AfterStepAsync(progress, ct), ct);

    /// <inheritdoc />
    public ValueTask AfterImageAsync(GeneratedImage image, CancellationToken ct) =>
        RunEach(Extensions, nameof(AfterImageAsync), e => e.AfterImageAsync(image, ct), ct);

    /// <summary>
    /// Calls one hook on each extension in order; a failure becomes an <see cref="ExtensionException"/> naming the
    /// extension and the hook. For hooks inside a model call (<paramref name="interruptsPython"/>), cancelling the job
    /// interrupts Python work the hook was running (KeyboardInterrupt): a failure then is the cancellation.
    /// </summary>
    private static async ValueTask RunEach(IEnumerable<ILoraBridgeExtension> extensions, string hook,
        Func<ILoraBridgeExtension, ValueTask> call, CancellationToken ct, bool interruptsPython = false)
    {
        foreach (var e in extensions)
        {
            try
            {
                await call(e).ConfigureAwait(false);
            }
            catch (Exception ex) when (interruptsPython && ex is not OperationCanceledException && ct.IsCancellationRequested)
            {
                throw new OperationCanceledException($"cancelled during {e.Name}'s {hook}", ex, ct);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new ExtensionException(e.Name, hook, ex);
            }
        }
    }

    /// <summary>Lets go of the extensions and unloads their assemblies (the collector frees them once unreferenced).</summary>
    public void Dispose()
    {
        foreach (var unit in Units)
        {
            foreach (var e in unit.Extensions) (e as IDisposable)?.Dispose();
            unit.Extensions = [];
            unit.Context?.Unload();
            unit.Context = null;
        }
        Extensions = [];
        _afterStep = _afterCfg = _beforeSave = _beforeModel = _beforeBatch = _afterBatch = [];
    }
}
