using Python.Runtime;

namespace LoraBridge.Python;

/// <summary>A sampling run started in Python.</summary>
/// <param name="Handle">Python-side handle.</param>
/// <param name="TotalCalls">Model calls the run needs.</param>
/// <param name="InfotextParams">Sampler entries for A1111's infotext (e.g. the resolved "Schedule type").</param>
public sealed record SamplingRun(long Handle, int TotalCalls, IReadOnlyList<KeyValuePair<string, string>> InfotextParams);

// Generation: one loaded checkpoint (python/lorabridge/generation.py Session) driven one step at a time.
public sealed partial class PythonBridge
{
    /// <summary>Loads the checkpoint unless it is already the loaded one; true when it loaded.</summary>
    public Task<bool> LoadCheckpointAsync(string path, CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "gen_load_checkpoint", new PyString(path));
        return r.As<bool>();
    }, ct);

    /// <summary>Reads and validates a LoRA-family file under <paramref name="name"/>; returns the layers it reaches.</summary>
    public Task<int> LoadNetworkAsync(string name, string path, CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "gen_load_network", new PyString(name), new PyString(path));
        return r.As<int>();
    }, ct);

    /// <summary>
    /// Bounds the memory of loaded LoRA-family networks kept between jobs, in MiB: least recently used networks are
    /// dropped first (the ones the model holds stay) and read again when a job uses them. Returns the networks loaded now.
    /// </summary>
    public Task<int> SetLoraCacheAsync(double mib, CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "gen_set_lora_cache", new PyFloat(mib));
        return r.As<int>();
    }, ct);

    /// <summary>Makes the weights equal to the base with exactly these networks (absolute); returns layers recomputed.</summary>
    public Task<int> SetNetworksAsync(IReadOnlyList<(string Name, double Te, double Unet, int? Dyn)> networks, CancellationToken ct = default) => CallAsync(m =>
    {
        var items = networks.Select(n => (PyObject)new PyTuple([
            new PyString(n.Name), new PyFloat(n.Te), new PyFloat(n.Unet), n.Dyn is { } d ? new PyInt(d) : PyObject.None,
        ])).ToArray();
        using var r = Invoke(m, "gen_set_networks", new PyList(items));
        return r.As<int>();
    }, ct);

    /// <summary>Restores the base weights bit for bit. Not cancellable: it is what cancellation relies on.</summary>
    public Task RestoreNetworksAsync() => CallAsync(m =>
    {
        Invoke(m, "gen_restore").Dispose();
        return true;
    }, CancellationToken.None);

    /// <summary>
    /// Encodes texts as one batch under the current text-encoder weights (A1111 encodes the texts of one prompt's
    /// schedule together; emphasis restores the batch's mean). Every text must have the same number of 77-token
    /// chunks. Returns one handle per text.
    /// </summary>
    public Task<IReadOnlyList<long>> EncodePromptsAsync(IReadOnlyList<IReadOnlyList<(int[] Ids, double[] Weights)>> texts, int clipSkip,
        CancellationToken ct = default) => CallAsync(m =>
    {
        static PyList Nested<T>(IEnumerable<IReadOnlyList<(int[] Ids, double[] Weights)>> texts, Func<(int[] Ids, double[] Weights), IEnumerable<T>> pick, Func<T, PyObject> make) =>
            new(texts.Select(t => (PyObject)new PyList(t.Select(c => (PyObject)new PyList(pick(c).Select(make).ToArray())).ToArray())).ToArray());
        var ids = Nested(texts, c => c.Ids, i => new PyInt(i));
        var weights = Nested(texts, c => c.Weights, w => new PyFloat(w));
        using var r = Invoke(m, "gen_encode", ids, weights, new PyInt(clipSkip));
        var handles = new long[r.Length()];
        for (int i = 0; i < handles.Length; i++) handles[i] = At<long>(r, i);
        return (IReadOnlyList<long>)handles;
    }, ct);

    /// <summary>Starts a sampling run: initial noise, schedule.</summary>
    public Task<SamplingRun> StartSamplingAsync(string sampler, string schedule, int steps, long seed, int batchSize, int width, int height,
        string randnSource, long etaNoiseSeedDelta, CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "gen_start", new PyString(sampler), new PyString(schedule), new PyInt(steps), new PyInt(seed),
            new PyInt(batchSize), new PyInt(width), new PyInt(height), new PyString(randnSource), new PyInt(etaNoiseSeedDelta));
        return ReadRun(r);
    }, ct);

    /// <summary>One guided model call; returns the calls left.</summary>
    public Task<int> StepAsync(long sampling, IReadOnlyList<(long Conditioning, double Weight)> positive, long negative, double cfgScale,
        CancellationToken ct = default) => CallAsync(m =>
    {
        var parts = new PyList(positive.Select(p => (PyObject)new PyTuple([new PyInt(p.Conditioning), new PyFloat(p.Weight)])).ToArray());
        using var r = Invoke(m, "gen_step", new PyInt(sampling), parts, new PyInt(negative), new PyFloat(cfgScale));
        return r.As<int>();
    }, ct);

    /// <summary>Decodes the run's latents to PNG files' bytes, each with its <c>parameters</c> text.</summary>
    public Task<IReadOnlyList<byte[]>> DecodePngAsync(long sampling, IReadOnlyList<string> infotexts, CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "gen_decode_png", new PyInt(sampling), new PyList(infotexts.Select(t => (PyObject)new PyString(t)).ToArray()));
        var result = new List<byte[]>();
        for (int i = 0; i < r.Length(); i++)
        {
            using var item = r[i];
            result.Add(ReadBytes(item));
        }
        return (IReadOnlyList<byte[]>)result;
    }, ct);

    /// <summary>Frees a conditioning or sampling handle.</summary>
    public Task<bool> ReleaseGenerationHandleAsync(long handle) => CallAsync(m =>
    {
        using var r = Invoke(m, "gen_release", new PyInt(handle));
        return r.As<bool>();
    }, CancellationToken.None);

    /// <summary>SHA-256 over every weight of the loaded model, to check restoration from C#.</summary>
    public Task<string> GetWeightsDigestAsync(CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "gen_weights_digest");
        return r.As<string>();
    }, ct);

    /// <summary>Writes the built-in demo model into <paramref name="folder"/> unless it is complete already; returns the checkpoint path.</summary>
    public Task<string> EnsureDemoModelAsync(string folder, CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "ensure_demo_model", new PyString(folder));
        return r.As<string>();
    }, ct);

    // A started run as bridge._run returns it: {handle, total_calls, infotext: [(key, value)]}.
    private static SamplingRun ReadRun(PyObject run)
    {
        using var items = run["infotext"];
        var parameters = new List<KeyValuePair<string, string>>();
        for (int i = 0; i < items.Length(); i++)
        {
            using var pair = items[i];
            parameters.Add(new(At<string>(pair, 0), At<string>(pair, 1)));
        }
        return new SamplingRun(Get<long>(run, "handle"), Get<int>(run, "total_calls"), parameters);
    }

    private static byte[] ReadBytes(PyObject bytes)
    {
        using var buffer = bytes.GetBuffer(PyBUF.SIMPLE);
        var result = new byte[buffer.Length];
        buffer.Read(result, 0, result.Length, 0);
        return result;
    }
}
