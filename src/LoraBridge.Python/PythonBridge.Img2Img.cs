using Python.Runtime;

namespace LoraBridge.Python;

/// <summary>An upscaler the user has: an A1111 built-in or an ESRGAN-family file.</summary>
/// <param name="Name">The name A1111 shows (file stem; A1111's names for the Real-ESRGAN files).</param>
/// <param name="Kind"><c>builtin</c> or <c>model</c>.</param>
/// <param name="Path">The file, empty for built-ins.</param>
public sealed record UpscalerInfo(string Name, string Kind, string Path);

/// <summary>Where upscaler files are looked for and how A1111 tiles them.</summary>
/// <param name="ModelsDirs"><c>models</c> folders whose <c>ESRGAN</c> and <c>RealESRGAN</c> sub-folders hold files.</param>
/// <param name="Tile">A1111's ESRGAN_tile (0: no tiling).</param>
/// <param name="TileOverlap">A1111's ESRGAN_tile_overlap.</param>
public sealed record UpscalerFolders(IReadOnlyList<string> ModelsDirs, int Tile = 192, int TileOverlap = 8);

/// <summary>An init image and how img2img uses it.</summary>
/// <param name="ImagePath">The picture (never modified).</param>
/// <param name="DenoisingStrength">0..1.</param>
/// <param name="ResizeMode">A1111's resize mode name or index.</param>
/// <param name="FixSteps">A1111's img2img_fix_steps option.</param>
/// <param name="Upscaler">Upscaler used when the picture must grow (A1111's upscaler_for_img2img); null: LANCZOS.</param>
public sealed record Img2ImgInput(string ImagePath, double DenoisingStrength, string ResizeMode, bool FixSteps, string? Upscaler);

/// <summary>The hires pass after a finished first pass.</summary>
/// <param name="Sampler">Second-pass sampler.</param>
/// <param name="Schedule">Second-pass schedule type.</param>
/// <param name="Steps">Second-pass steps (already "hr steps or steps").</param>
/// <param name="DenoisingStrength">0..1.</param>
/// <param name="Scale">Upscale factor (used when both resize sizes are 0).</param>
/// <param name="ResizeX">Target width or 0.</param>
/// <param name="ResizeY">Target height or 0.</param>
/// <param name="Upscaler">A <c>Latent …</c> mode or an image upscaler name.</param>
public sealed record HiresPass(string Sampler, string Schedule, int Steps, double DenoisingStrength, double Scale, int ResizeX, int ResizeY, string Upscaler);

// img2img, hires fix and upscalers (python/lorabridge/generation_img.py through bridge.py).
public sealed partial class PythonBridge
{
    /// <summary>Starts an img2img run: the init picture resized and encoded, noise at the strength's level.</summary>
    public Task<SamplingRun> StartImg2ImgAsync(string sampler, string schedule, int steps, long seed, int batchSize, int width, int height,
        string randnSource, long etaNoiseSeedDelta, Img2ImgInput input, UpscalerFolders folders, CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "gen_start_img2img", new PyString(sampler), new PyString(schedule), new PyInt(steps), new PyInt(seed),
            new PyInt(batchSize), new PyInt(width), new PyInt(height), new PyString(randnSource), new PyInt(etaNoiseSeedDelta),
            new PyString(input.ImagePath), new PyFloat(input.DenoisingStrength), new PyString(input.ResizeMode),
            new PyInt(input.FixSteps ? 1 : 0), Optional(input.Upscaler), Dirs(folders), new PyInt(folders.Tile),
            new PyInt(folders.TileOverlap));
        return ReadRun(r);
    }, ct);

    /// <summary>Starts the hires second pass over a finished first pass (upscale, fresh noise from the same seeds).</summary>
    public Task<SamplingRun> StartHiresAsync(long firstPass, HiresPass pass, UpscalerFolders folders, CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "gen_start_hires", new PyInt(firstPass), new PyString(pass.Sampler), new PyString(pass.Schedule),
            new PyInt(pass.Steps), new PyFloat(pass.DenoisingStrength), new PyFloat(pass.Scale), new PyInt(pass.ResizeX),
            new PyInt(pass.ResizeY), new PyString(pass.Upscaler), Dirs(folders), new PyInt(folders.Tile), new PyInt(folders.TileOverlap));
        return ReadRun(r);
    }, ct);

    /// <summary>The built-in upscalers and every ESRGAN-family file in the folders (files are not opened).</summary>
    public Task<IReadOnlyList<UpscalerInfo>> ListUpscalersAsync(UpscalerFolders folders, CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "upscalers_list", Dirs(folders));
        var result = new List<UpscalerInfo>();
        for (int i = 0; i < r.Length(); i++)
        {
            using var item = r[i];
            result.Add(new UpscalerInfo(Get<string>(item, "name"), Get<string>(item, "kind"), Get<string>(item, "path")));
        }
        return (IReadOnlyList<UpscalerInfo>)result;
    }, ct);

    /// <summary>A1111's Extras upscale of one picture; returns the PNG bytes (the source's parameters kept, <paramref name="postprocessing"/> added) and the size.</summary>
    public Task<(byte[] Png, int Width, int Height)> UpscaleImageAsync(string imagePath, string upscaler, double scale, UpscalerFolders folders,
        string? postprocessing, CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "upscale_image", new PyString(imagePath), Dirs(folders), new PyString(upscaler), new PyFloat(scale),
            new PyInt(folders.Tile), new PyInt(folders.TileOverlap), Optional(postprocessing));
        using var png = r["png"];
        return (ReadBytes(png), Get<int>(r, "width"), Get<int>(r, "height"));
    }, ct);

    private static PyObject Optional(string? value) => value is null ? PyObject.None : new PyString(value);

    private static PyList Dirs(UpscalerFolders folders) => new(folders.ModelsDirs.Select(d => (PyObject)new PyString(d)).ToArray());
}
