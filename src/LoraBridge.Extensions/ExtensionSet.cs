using LoraBridge.Engine;

namespace LoraBridge.Extensions;

/// <summary>
/// The loaded extensions, as one set of <see cref="IGenerationHooks"/> for the engine: each hook calls every extension
/// in load order, and <see cref="BeforeJobAsync"/> passes each one's rewritten request to the next.
/// Disposing unloads the extensions' assemblies.
/// </summary>
public sealed class ExtensionSet : IGenerationHooks, IDisposable
{
    internal ExtensionSet(IReadOnlyList<ExtensionUnit> units)
    {
        Units = units;
        Extensions = units.SelectMany(u => u.Extensions).ToList();
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
        foreach (var e in Extensions)
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
    }
}
