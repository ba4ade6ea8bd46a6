using LoraBridge.Models;
using LoraBridge.Python;
using LoraBridge.Tokenizers;

namespace LoraBridge.Engine;

/// <summary>Where textual-inversion embeddings come from and how wide the checkpoint's text encoder is.</summary>
public static class EmbeddingSources
{
    /// <summary>The SD 1.x text encoder's token-embedding key in an ldm checkpoint.</summary>
    public const string TokenEmbeddingKey = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight";

    /// <summary>SDXL's two token-embedding keys (CLIP ViT-L, OpenCLIP ViT-bigG); A1111's width is their sum.</summary>
    public static readonly string[] SdxlTokenEmbeddingKeys =
    [
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
        "conditioner.embedders.1.model.token_embedding.weight",
    ];

    /// <summary>Name of the description cache in the data folder.</summary>
    public const string InfoCacheFile = "embedding-info.json";

    /// <summary>Configured folders, then A1111's <c>embeddings/</c> under the webui folder (when it exists), without repeats.</summary>
    public static IReadOnlyList<string> Folders(WorkspaceSettings settings)
    {
        var folders = settings.EmbeddingDirs.Select(Path.GetFullPath).ToList();
        if (settings.WebUiDir is { } webui)
        {
            var a1111 = Path.GetFullPath(Path.Combine(webui, "embeddings"));
            if (Directory.Exists(a1111) && !folders.Contains(a1111)) folders.Add(a1111);
        }
        return folders.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Width of the text encoder's token embeddings read from a safetensors checkpoint header (A1111's
    /// <c>expected_shape</c>), or -1 when it cannot be read without loading (then every width is accepted and a
    /// wrong one fails when encoding).
    /// </summary>
    public static int TextEncoderWidth(string checkpointPath)
    {
        if (!checkpointPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return -1;
        try
        {
            var tensors = SafetensorsHeader.Read(checkpointPath).TensorsByName;
            if (tensors.TryGetValue(TokenEmbeddingKey, out var t) && t.Shape.Count == 2) return (int)t.Shape[1];
        }
        catch (Exception e) when (e is ModelFileException or IOException)
        {
            return -1;
        }
        var (w1, w2) = SdxlEncoderWidths(checkpointPath);
        return w1 > 0 && w2 > 0 ? w1 + w2 : -1;
    }

    /// <summary>
    /// Widths of an SDXL checkpoint's two text encoders (CLIP-L role, OpenCLIP role) from its safetensors header; -1 for
    /// one that cannot be read without loading (any width is then accepted and a wrong one fails when encoding).
    /// </summary>
    public static (int ClipL, int ClipG) SdxlEncoderWidths(string checkpointPath)
    {
        if (!checkpointPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return (-1, -1);
        try
        {
            var tensors = SafetensorsHeader.Read(checkpointPath).TensorsByName;
            var w = SdxlTokenEmbeddingKeys.Select(k => tensors.TryGetValue(k, out var x) && x.Shape.Count == 2 ? (int)x.Shape[1] : -1).ToList();
            return (w[0], w[1]);
        }
        catch (Exception e) when (e is ModelFileException or IOException)
        {
            return (-1, -1);
        }
    }

    /// <summary>Scans the configured folders for a checkpoint; null when no folder is configured or found.</summary>
    public static async Task<EmbeddingDatabase?> LoadAsync(ModelSources sources, string checkpointPath, ClipTokenizer tokenizer, PythonBridge? bridge,
        CancellationToken ct)
    {
        var folders = Folders(sources.Settings);
        if (folders.Count == 0) return null;
        var cache = new EmbeddingInfoCache(Path.Combine(sources.Settings.DataDir, InfoCacheFile));
        return await EmbeddingDatabase.LoadAsync(folders, TextEncoderWidth(checkpointPath), tokenizer,
            bridge is null ? null : new PythonEmbeddingReader(bridge), sources.Catalog.Hashes, cache, ct).ConfigureAwait(false);
    }
}
