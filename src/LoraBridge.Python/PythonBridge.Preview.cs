using Python.Runtime;

namespace LoraBridge.Python;

/// <summary>A live preview of a running job: RGB bytes row by row.</summary>
/// <param name="Width">Width in pixels (the latent's width: image width / 8).</param>
/// <param name="Height">Height in pixels.</param>
/// <param name="Rgb">Width × height × 3 bytes.</param>
public sealed record LatentPreview(int Width, int Height, byte[] Rgb);

// Live previews while sampling (python/lorabridge/preview.py, its own module so bridge.py stays untouched).
public sealed partial class PythonBridge
{
    /// <summary>
    /// A1111's "Approx cheap" preview of the running job's first image (its current denoised prediction mapped to RGB
    /// by a fixed linear map; no VAE), or null when nothing is sampling. Calls run in order, so one issued after a
    /// step shows that step (or a later one).
    /// </summary>
    public Task<LatentPreview?> LatentPreviewAsync(CancellationToken ct = default) => CallAsync(_ =>
    {
        using var module = Py.Import("lorabridge.preview");
        using var r = Invoke(module, "gen_latent_preview");
        if (r.IsNone()) return null;
        using var data = r[2];
        return (LatentPreview?)new LatentPreview(At<int>(r, 0), At<int>(r, 1), ReadBytes(data));
    }, ct);
}
