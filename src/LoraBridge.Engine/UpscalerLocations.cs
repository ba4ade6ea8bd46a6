using LoraBridge.Python;

namespace LoraBridge.Engine;

/// <summary>Where a workspace's upscaler files live: A1111's <c>models/ESRGAN</c> and <c>models/RealESRGAN</c>.</summary>
public static class UpscalerLocations
{
    /// <summary>
    /// The <c>models</c> folders searched: the A1111 install's, then LoraBridge's data folder's. Also what extensions get as
    /// <c>IExtensionHost.ModelsDirs</c> (LatentPreview finds its TAESD decoder in their <c>VAE-approx</c>).
    /// </summary>
    public static IReadOnlyList<string> ModelsDirs(WorkspaceSettings settings)
    {
        var dirs = new List<string>();
        if (settings.WebUiDir is { } webui) dirs.Add(Path.GetFullPath(Path.Combine(webui, "models")));
        dirs.Add(Path.GetFullPath(Path.Combine(settings.DataDir, "models")));
        return dirs;
    }

    /// <summary>The folders with A1111's tile settings (defaults 192 and 8).</summary>
    public static UpscalerFolders Folders(WorkspaceSettings settings, int tile = 192, int tileOverlap = 8) =>
        new(ModelsDirs(settings), tile, tileOverlap);
}
