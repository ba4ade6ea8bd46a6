using System.Globalization;

namespace LoraBridge.Tui;

/// <summary>Receives live previews from a running job (the view model's progress object implements it).</summary>
public interface IPreviewSink
{
    /// <summary>A preview of the job's first image after <paramref name="step"/> of <paramref name="totalSteps"/> steps;
    /// <paramref name="taesd"/>: made by the TAESD decoder (else Approx cheap).</summary>
    void Preview(RgbImage image, int step, int totalSteps, bool taesd);
}

/// <summary>
/// What the image panel shows: the latest image (or the history row the user selected) with its infotext, or a live
/// preview while a job samples. Rendering to cells (<see cref="Frame"/>) is kept here so tests can check the colours
/// without a terminal; the view only copies the frame to the screen.
/// </summary>
public sealed class PreviewModel
{
    private (int Version, int Columns, int Rows, HalfBlockFrame? Frame)? _cache;

    /// <summary>The picture, or null when there is none (yet, or it could not be read).</summary>
    public RgbImage? Image { get; private set; }

    /// <summary>The image file shown; null for a live preview.</summary>
    public string? Path { get; private set; }

    /// <summary>Text under the picture: the image's infotext, the live step, or why nothing is shown.</summary>
    public string Caption { get; private set; } = "no image yet: Ctrl+G generates one; moving through the History shows earlier ones";

    /// <summary>True while the picture is a live per-step preview.</summary>
    public bool IsLive { get; private set; }

    /// <summary>Changes with every new picture (views re-encode their raster image when it changes).</summary>
    public int Version { get; private set; }

    /// <summary>Raised after the picture or caption changed.</summary>
    public event Action? Changed;

    /// <summary>
    /// Shows an image file with its infotext (A1111's "parameters" text). A file that cannot be decoded leaves no
    /// picture and says why in the caption (naming the file); the file is only read.
    /// </summary>
    /// <returns>False when the file could not be shown.</returns>
    public bool ShowFile(string path, string? infotext)
    {
        try
        {
            Set(RgbImage.Load(path), path, infotext ?? "", live: false);
            return true;
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException)
        {
            Set(null, path, $"cannot show {path}: {ex.Message}", live: false);
            return false;
        }
    }

    /// <summary>
    /// Shows a picture decoded elsewhere (a LoRA's preview thumbnail from <see cref="ThumbnailCache"/>) with a caption;
    /// a null <paramref name="image"/> leaves only the caption (why there is no picture).
    /// </summary>
    public void Show(RgbImage? image, string? path, string caption) => Set(image, path, caption, live: false);

    /// <summary>Shows a live preview (the caption names the step and the method: approximate colours at 1/8 size, or TAESD).</summary>
    public void ShowLive(RgbImage image, int step, int totalSteps, bool taesd = false) =>
        Set(image, null, string.Create(CultureInfo.InvariantCulture,
            $"live preview, step {step}/{totalSteps} ({(taesd ? "A1111 \"TAESD\": tiny decoder at full size" : "A1111 \"Approx cheap\": approximate colours at 1/8 size")})"), live: true);

    /// <summary>The picture fitted to <paramref name="columns"/> × <paramref name="rows"/> cells in half blocks; null without a picture or room.</summary>
    public HalfBlockFrame? Frame(int columns, int rows)
    {
        if (Image is null) return null;
        if (_cache is { } c && c.Version == Version && c.Columns == columns && c.Rows == rows) return c.Frame;
        var frame = HalfBlockFrame.Fit(Image, columns, rows);
        _cache = (Version, columns, rows, frame);
        return frame;
    }

    private void Set(RgbImage? image, string? path, string caption, bool live)
    {
        Image = image;
        Path = path;
        Caption = caption;
        IsLive = live;
        Version++;
        Changed?.Invoke();
    }
}
