using System.Text;

namespace LoraBridge.Models.Tests;

/// <summary>Writes real safetensors files byte by byte, without the library under test.</summary>
internal static class St
{
    public sealed record T(string Name, string DType, long[] Shape);

    public static T F32(string name, params long[] shape) => new(name, "F32", shape);

    /// <summary>Writes a valid file; tensor bytes are a deterministic pattern so hashes depend on content.</summary>
    public static byte[] Build(IEnumerable<T> tensors, IDictionary<string, string>? metadata = null, int seed = 1)
    {
        var json = new StringBuilder("{");
        var parts = new List<string>();
        if (metadata is { Count: > 0 })
            parts.Add("\"__metadata__\":{" + string.Join(",", metadata.Select(kv => $"{Q(kv.Key)}:{Q(kv.Value)}")) + "}");
        long offset = 0;
        foreach (var t in tensors)
        {
            long bytes = t.Shape.Aggregate(1L, (a, b) => a * b) * (t.DType is "F16" or "BF16" ? 2 : t.DType is "F64" or "I64" ? 8 : 4);
            parts.Add($"{Q(t.Name)}:{{\"dtype\":\"{t.DType}\",\"shape\":[{string.Join(",", t.Shape)}],\"data_offsets\":[{offset},{offset + bytes}]}}");
            offset += bytes;
        }
        json.Append(string.Join(",", parts)).Append('}');
        var header = Encoding.UTF8.GetBytes(json.ToString());
        var data = new byte[offset];
        var rng = new Random(seed);
        rng.NextBytes(data);
        return Raw(header, data);
    }

    /// <summary>8-byte little-endian length + header + data, with no checks.</summary>
    public static byte[] Raw(byte[] header, byte[] data, long? declaredLength = null)
    {
        var ms = new MemoryStream();
        ms.Write(BitConverter.GetBytes(declaredLength ?? header.Length));
        ms.Write(header);
        ms.Write(data);
        return ms.ToArray();
    }

    public static string Q(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";

    public static string Write(string path, IEnumerable<T> tensors, IDictionary<string, string>? metadata = null, int seed = 1)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, Build(tensors, metadata, seed));
        return path;
    }

    /// <summary>A small kohya-style LoRA (two linear groups, rank 4) with optional metadata.</summary>
    public static string Lora(string path, IDictionary<string, string>? metadata = null, int rank = 4, int seed = 1) =>
        Write(path,
        [
            F32("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha", 1),
            F32("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", rank, 768),
            F32("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight", 320, rank),
            F32("lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", rank, 16),
            F32("lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", 16, rank),
        ], metadata, seed);
}

/// <summary>A temporary A1111-like folder tree, deleted on dispose.</summary>
internal sealed class TempWebUi : IDisposable
{
    public TempWebUi()
    {
        Root = Path.Combine(Path.GetTempPath(), "lbr-models-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Lora);
        Directory.CreateDirectory(Checkpoints);
    }

    public string Root { get; }
    public string Lora => Path.Combine(Root, "models", "Lora");
    public string Lycoris => Path.Combine(Root, "models", "LyCORIS");
    public string Checkpoints => Path.Combine(Root, "models", "Stable-diffusion");
    public string Data => Path.Combine(Root, "data");

    public LoraCatalog Catalog(Action<CatalogOptions>? configure = null)
    {
        var o = new CatalogOptions { WebUiDir = Root, DataDir = Data };
        configure?.Invoke(o);
        return new LoraCatalog(o);
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}
