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
    public async ValueTask AfterCfgAsync(CfgStep step, CancellationToken ct)
    {
        foreach (var e in _afterCfg)
        {
            try
            {
                await e.AfterCfgAsync(step, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException && ct.IsCancellationRequested)
            {
                // Cancelling interrupts Python work the hook was running (KeyboardInterrupt): that is the cancellation.
                throw new OperationCanceledException("cancelled during an after-CFG hook", ex, ct);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new ExtensionException(e.Name, nameof(AfterCfgAsync), ex);
            }
        }
    }

    /// <inheritdoc />
    public bool HasBeforeModelCall => _beforeModel.Count > 0;

    /// <inheritdoc />
    public bool HasBatchHooks => _beforeBatch.Count > 0 || _afterBatch.Count > 0;

    /// <inheritdoc />
    public async ValueTask BeforeModelCallAsync(DenoiserStep step, CancellationToken ct)
    {
        foreach (var e in _beforeModel)
        {
            try
            {
                await e.BeforeModelCallAsync(step, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException && ct.IsCancellationRequested)
            {
                // As for after-CFG: cancelling interrupts the hook's Python work, and that is the cancellation.
                throw new OperationCanceledException("cancelled during a before-model-call hook", ex, ct);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new ExtensionException(e.Name, nameof(BeforeModelCallAsync), ex);
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask BeforeBatchAsync(BatchStart batch, CancellationToken ct)
    {
        foreach (var e in _beforeBatch)
        {
            try
            {
                await e.BeforeBatchAsync(batch, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new ExtensionException(e.Name, nameof(BeforeBatchAsync), ex);
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask AfterBatchAsync(BatchDone batch, CancellationToken ct)
    {
        foreach (var e in _afterBatch)
        {
            try
            {
                await e.AfterBatchAsync(batch, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new ExtensionException(e.Name, nameof(AfterBatchAsync), ex);
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask BeforeImageSavedAsync(ImageToSave image, CancellationToken ct)
    {
        foreach (var e in _beforeSave)
        {
            try
            {
                await e.BeforeImageSavedAsync(image, ct).ConfigureAwait(false);
                image.Validate(); // a bad change is this extension's
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new ExtensionException(e.Name, nameof(BeforeImageSavedAsync), ex);
            }
        }
    }

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
    public async ValueTask AfterStepAsync(GenerationProgress progress, CancellationToken ct)
    {
        foreach (var e in _afterStep)
        {
            try
            {
                await e.AfterStepAsync(progress, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new ExtensionException(e.Name, nameof(AfterStepAsync), ex);
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask AfterImageAsync(GeneratedImage image, CancellationToken ct)
    {
        foreach (var e in Extensions)
        {
            try
            {
                await e.AfterImageAsync(image, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new ExtensionException(e.Name, nameof(AfterImageAsync), ex);
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
