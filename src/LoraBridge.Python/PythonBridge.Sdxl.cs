using Python.Runtime;

namespace LoraBridge.Python;

/// <summary>What the loaded checkpoint is (<c>gen_model_info</c>).</summary>
/// <param name="Family">"sd1" or "sdxl".</param>
/// <param name="DefaultWidth">Default image width for the family (512 or 1024).</param>
/// <param name="DefaultHeight">Default image height.</param>
/// <param name="TextEncoders">1 (SD1) or 2 (SDXL).</param>
/// <param name="VaeScale">Latent scale factor (0.18215 or 0.13025).</param>
/// <param name="Precision">"full" or "autocast", what the load runs with.</param>
/// <param name="DType">Weight dtype, e.g. "float32".</param>
/// <param name="Device">"cpu" or "cuda".</param>
public sealed record ModelInfo(string Family, int DefaultWidth, int DefaultHeight, int TextEncoders, double VaeScale, string Precision,
    string DType, string Device);

/// <summary>A checkpoint's family read from its header (<c>checkpoint_family</c>), without loading weights.</summary>
/// <param name="Family">"sd1", "sdxl", or the name of a refused family.</param>
/// <param name="Supported">Whether LoraBridge loads it.</param>
/// <param name="Detail">What was recognised (e.g. "SDXL refiner (…)").</param>
/// <param name="DefaultWidth">Default image width.</param>
/// <param name="DefaultHeight">Default image height.</param>
public sealed record CheckpointFamilyInfo(string Family, bool Supported, string Detail, int DefaultWidth, int DefaultHeight);

/// <summary>Which family a loaded network was made for, against the loaded model (<c>gen_network_family</c>).</summary>
/// <param name="Family">"sd1", "sdxl" or "unknown".</param>
/// <param name="ModelFamily">The loaded checkpoint's family.</param>
/// <param name="Matched">Layers of the model the network reaches.</param>
/// <param name="Unmatched">Key groups that reach no layer.</param>
/// <param name="Warning">A warning naming both families; empty when they match.</param>
public sealed record NetworkFamilyInfo(string Family, string ModelFamily, int Matched, int Unmatched, string Warning);

// SDXL: model information, the two-encoder conditioning, precision and the SDXL demo model (python/lorabridge/bridge.py).
public sealed partial class PythonBridge
{
    /// <summary>The loaded checkpoint's family and the settings it runs with.</summary>
    public Task<ModelInfo> GetModelInfoAsync(CancellationToken ct = default) => CallAsync(m =>
    {
        using var d = Invoke(m, "gen_model_info");
        return new ModelInfo(Get<string>(d, "family"), Get<int>(d, "default_width"), Get<int>(d, "default_height"), Get<int>(d, "text_encoders"),
            Get<double>(d, "vae_scale"), Get<string>(d, "precision"), Get<string>(d, "dtype"), Get<string>(d, "device"));
    }, ct);

    /// <summary>A checkpoint file's family from its keys and shapes, without loading it.</summary>
    public Task<CheckpointFamilyInfo> GetCheckpointFamilyAsync(string path, CancellationToken ct = default) => CallAsync(m =>
    {
        using var d = Invoke(m, "checkpoint_family", new PyString(path));
        return new CheckpointFamilyInfo(Get<string>(d, "family"), Get<bool>(d, "supported"), Get<string>(d, "detail"),
            Get<int>(d, "default_width"), Get<int>(d, "default_height"));
    }, ct);

    /// <summary>
    /// Sets the precision the next checkpoint load uses: "autocast" (A1111's default: fp16 weights under autocast on
    /// CUDA) or "full" (fp32); <paramref name="noHalfVae"/> keeps the VAE in fp32. The CPU always runs fp32.
    /// Returns true when the setting changed (a loaded model is then reloaded by the next load).
    /// </summary>
    public Task<bool> SetPrecisionAsync(string precision, bool noHalfVae = false, CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "gen_set_precision", new PyString(precision), noHalfVae.ToPython());
        return r.As<bool>();
    }, ct);

    /// <summary>
    /// Encodes texts for SDXL as one batch (A1111 encodes one prompt's schedule together): per text and chunk the
    /// first encoder's ids, the second encoder's ids and the shared emphasis weights; the size conditioning; and
    /// whether the text parts are zeroed (an empty negative prompt). <paramref name="fixesJson"/>: textual-inversion
    /// embeddings as <c>[text][chunk][[offset, key, path]]</c> JSON (their <c>clip_l</c> vectors go to the first
    /// encoder, <c>clip_g</c> to the second), or null. Returns one handle per text.
    /// </summary>
    public Task<IReadOnlyList<long>> EncodeSdxlAsync(IReadOnlyList<IReadOnlyList<(int[] Ids, int[] Te2Ids, double[] Weights)>> texts,
        int width, int height, bool zeroText, int cropTop = 0, int cropLeft = 0, int originalWidth = 0, int originalHeight = 0,
        string? fixesJson = null, CancellationToken ct = default) => CallAsync(m =>
    {
        static PyList Nested<T>(IEnumerable<IReadOnlyList<(int[] Ids, int[] Te2Ids, double[] Weights)>> texts,
            Func<(int[] Ids, int[] Te2Ids, double[] Weights), IEnumerable<T>> pick, Func<T, PyObject> make) =>
            new(texts.Select(t => (PyObject)new PyList(t.Select(c => (PyObject)new PyList(pick(c).Select(make).ToArray())).ToArray())).ToArray());
        var te1 = Nested(texts, c => c.Ids, i => new PyInt(i));
        var te2 = Nested(texts, c => c.Te2Ids, i => new PyInt(i));
        var weights = Nested(texts, c => c.Weights, w => new PyFloat(w));
        using var r = Invoke(m, "gen_encode_xl", te1, te2, weights, new PyInt(width), new PyInt(height), zeroText.ToPython(),
            new PyInt(cropTop), new PyInt(cropLeft), new PyInt(originalWidth), new PyInt(originalHeight), new PyString(fixesJson ?? ""));
        var handles = new long[r.Length()];
        for (int i = 0; i < handles.Length; i++) handles[i] = At<long>(r, i);
        return (IReadOnlyList<long>)handles;
    }, ct);

    /// <summary>Which family a loaded network was made for, and how many of its layers reach the loaded model.</summary>
    public Task<NetworkFamilyInfo> GetNetworkFamilyAsync(string name, CancellationToken ct = default) => CallAsync(m =>
    {
        using var d = Invoke(m, "gen_network_family", new PyString(name));
        return new NetworkFamilyInfo(Get<string>(d, "family"), Get<string>(d, "model_family"), Get<int>(d, "matched"), Get<int>(d, "unmatched"),
            Get<string>(d, "warning"));
    }, ct);

    /// <summary>
    /// Writes the built-in SDXL demo model (<c>lorabridge-demo-xl</c>, its LoRA <c>demo_style_xl</c> and the demo
    /// tokenizer) into <paramref name="folder"/> unless it is complete; returns the checkpoint path.
    /// </summary>
    public Task<string> EnsureDemoModelXlAsync(string folder, CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "ensure_demo_model_xl", new PyString(folder));
        return r.As<string>();
    }, ct);
}
