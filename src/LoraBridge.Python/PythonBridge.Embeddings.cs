using Python.Runtime;

namespace LoraBridge.Python;

// Textual-inversion embeddings (python/lorabridge/embeddings.py): file descriptions and the vectors at encode time.
// Structured data crosses as JSON text: these calls are rare and small beside a model step.
public sealed partial class PythonBridge
{
    /// <summary>
    /// Describes embedding files that need their contents read (pickles through the restricted unpickler, images):
    /// returns the JSON array of <c>lorabridge.embeddings.describe</c> objects, one per path.
    /// </summary>
    public Task<string> DescribeEmbeddingFilesAsync(IReadOnlyList<string> paths, CancellationToken ct = default) => CallAsync(m =>
    {
        using var list = new PyList(paths.Select(p => (PyObject)new PyString(p)).ToArray());
        using var r = Invoke(m, "emb_describe_files", list);
        return r.As<string>();
    }, ct);

    /// <summary>
    /// Encodes texts as one batch with embedding vectors written at their placeholder positions (A1111's
    /// <c>EmbeddingsWithFixes</c>). <paramref name="requestJson"/>: <c>{"ids": [text][chunk][77], "weights": …,
    /// "fixes": [text][chunk][[offset, key, path]]}</c>. Returns one conditioning handle per text.
    /// </summary>
    public Task<IReadOnlyList<long>> EncodeWithEmbeddingsAsync(string requestJson, int clipSkip, CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "gen_encode_fixed", new PyString(requestJson), new PyInt(clipSkip));
        var handles = new long[r.Length()];
        for (int i = 0; i < handles.Length; i++) handles[i] = At<long>(r, i);
        return (IReadOnlyList<long>)handles;
    }, ct);

    /// <summary>Width of the token embeddings of the text encoder in <paramref name="weightsPath"/> (loaded once and kept).</summary>
    public Task<int> TextEncoderWidthAsync(string weightsPath, CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "emb_text_encoder_width", new PyString(weightsPath));
        return r.As<int>();
    }, ct);

    /// <summary>
    /// Runs encode calls on the text encoder in <paramref name="weightsPath"/> and writes their outputs to the
    /// <c>.npz</c> file <paramref name="outPath"/> (keys <c>c&lt;call&gt;_t&lt;text&gt;</c>). <paramref name="callsJson"/>: a JSON
    /// array of requests as for <see cref="EncodeWithEmbeddingsAsync"/>. Returns a JSON array with null per call that
    /// ran, or the error of the call that failed (the calls after it are not run).
    /// </summary>
    public Task<string> WriteEmbeddingConditioningAsync(string weightsPath, string outPath, string callsJson, CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "emb_write_cond", new PyString(weightsPath), new PyString(outPath), new PyString(callsJson));
        return r.As<string>();
    }, ct);
}
