using LoraBridge.Python;

namespace LoraBridge.Engine;

/// <summary>
/// The image upscalers' names without Python, as python/lorabridge/upscaler.py's <c>UpscalerCatalog</c> (and A1111's
/// <c>modelloader</c>) names them: the built-ins, then every <c>.pth/.pt/.safetensors</c> file under
/// <c>models/ESRGAN</c> (its stem) and <c>models/RealESRGAN</c> (A1111's display name for its three downloads, else
/// the stem) of each models folder. Listing reads directory entries only.
/// </summary>
public static class UpscalerNames
{
    /// <summary>A1111's built-in upscalers (<c>BUILTIN</c> in upscaler.py).</summary>
    public static readonly IReadOnlyList<string> BuiltIn = ["None", "Lanczos", "Nearest"];

    /// <summary>Upscaler file extensions (<c>UPSCALER_EXTENSIONS</c> in esrgan.py).</summary>
    public static readonly IReadOnlyList<string> Extensions = [".pth", ".pt", ".safetensors"];

    /// <summary>A1111's RealESRGAN downloads: file stem → the name it shows (<c>REALESRGAN_NAMES</c>).</summary>
    public static readonly IReadOnlyDictionary<string, string> RealEsrganNames = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["RealESRGAN_x4plus"] = "R-ESRGAN 4x+",
        ["RealESRGAN_x4plus_anime_6B"] = "R-ESRGAN 4x+ Anime6B",
        ["RealESRGAN_x2plus"] = "R-ESRGAN 2x+",
    };

    /// <summary>Built-ins, then the files of every models folder in order (ESRGAN before RealESRGAN, files in path order).</summary>
    public static IReadOnlyList<string> List(UpscalerFolders folders)
    {
        var names = new List<string>(BuiltIn);
        foreach (var models in folders.ModelsDirs)
        {
            foreach (var folder in new[] { "ESRGAN", "RealESRGAN" })
            {
                var dir = Path.Combine(models, folder);
                if (!Directory.Exists(dir)) continue;
                IEnumerable<string> files;
                try
                {
                    files = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
                        .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                        // Python sorts Path objects part by part: '\0' for the separator keeps that order.
                        .OrderBy(f => f.Replace(Path.DirectorySeparatorChar, '\0'), StringComparer.Ordinal).ToList();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    continue;   // an unreadable folder lists nothing, as Python's rglob on it would fail the listing only there
                }
                foreach (var f in files)
                {
                    var stem = Path.GetFileNameWithoutExtension(f);
                    names.Add(folder == "RealESRGAN" ? RealEsrganNames.GetValueOrDefault(stem, stem) : stem);
                }
            }
        }
        return names;
    }
}
