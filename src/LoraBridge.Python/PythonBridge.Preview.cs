using Python.Runtime;

namespace LoraBridge.Python;

/// <summary>A1111's "Live preview method": how a step's preview is made from the latent.</summary>
public enum PreviewMethod
{
    /// <summary>TAESD when the model family's decoder file is in a models folder's <c>VAE-approx</c>, else Approx cheap.</summary>
    Auto,
    /// <summary>A fixed linear map from latent channels to RGB (no VAE): the latent's size, image size / 8.</summary>
    ApproxCheap,
    /// <summary>The TAESD decoder (<c>taesd_decoder.*</c> for SD1, <c>taesdxl_decoder.*</c> for SDXL): the image's size.
    /// Falls back to Approx cheap, with a note, when the file is missing or unusable.</summary>
    Taesd,
}

/// <summary>A live preview, how it was made and, when not as asked (TAESD missing or unusable), a one-line note saying why.</summary>
/// <param name="Image">The preview's RGB pixels.</param>
/// <param name="UsedTaesd">True when the TAESD decoder made it (image size), false for Approx cheap (1/8 size).</param>
/// <param name="Note">Null when the preview was made by the asked method (or Auto found no file).</param>
public sealed record LatentPreview(RgbImage Image, bool UsedTaesd, string? Note);

// Live previews while sampling (python/lorabridge/preview.py behind bridge.gen_latent_preview).
public sealed partial class PythonBridge
{
    /// <summary>
    /// A preview of the running job's first image (its current denoised prediction) by <paramref name="method"/>, or
    /// null when nothing is sampling. Calls run in order, so one issued after a step shows that step (or a later one).
    /// </summary>
    /// <param name="method">How the preview is made.</param>
    /// <param name="modelsDirs"><c>models</c> folders whose <c>VAE-approx</c> sub-folders may hold TAESD decoders, in
    /// priority order (<c>UpscalerLocations.ModelsDirs</c>); unused for <see cref="PreviewMethod.ApproxCheap"/>.</param>
    /// <param name="ct">Cancels the wait for the call.</param>
    public Task<LatentPreview?> LatentPreviewAsync(PreviewMethod method, IReadOnlyList<string> modelsDirs, CancellationToken ct = default)
    {
        var name = method switch
        {
            PreviewMethod.Auto => "auto",
            PreviewMethod.ApproxCheap => "cheap",
            PreviewMethod.Taesd => "taesd",
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, "not a preview method"),
        };
        var dirs = modelsDirs.ToArray();
        return CallAsync(m =>
        {
            using var r = Invoke(m, "gen_latent_preview", new PyString(name), new PyList(dirs.Select(d => (PyObject)new PyString(d)).ToArray()));
            if (r.IsNone()) return null;
            using var data = r[2];
            var note = At<string>(r, 4);
            return (LatentPreview?)new LatentPreview(new RgbImage(ReadBytes(data), At<int>(r, 0), At<int>(r, 1)), At<string>(r, 3) == "taesd",
                note.Length == 0 ? null : note);
        }, ct);
    }
}
