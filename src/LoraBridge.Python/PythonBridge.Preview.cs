using Python.Runtime;

namespace LoraBridge.Python;

// Live previews while sampling (python/lorabridge/preview.py behind bridge.gen_latent_preview).
public sealed partial class PythonBridge
{
    /// <summary>
    /// A1111's "Approx cheap" preview of the running job's first image (its current denoised prediction mapped to RGB
    /// by a fixed linear map; no VAE; the latent's size, image size / 8), or null when nothing is sampling. Calls run in
    /// order, so one issued after a step shows that step (or a later one).
    /// </summary>
    public Task<RgbImage?> LatentPreviewAsync(CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "gen_latent_preview");
        if (r.IsNone()) return null;
        using var data = r[2];
        return (RgbImage?)new RgbImage(ReadBytes(data), At<int>(r, 0), At<int>(r, 1));
    }, ct);
}
