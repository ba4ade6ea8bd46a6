using Python.Runtime;

namespace LoraBridge.Python;

// LoRA block weights (lbw=/lbwe=): a table by network name that the session's set_networks applies.
public sealed partial class PythonBridge
{
    /// <summary>
    /// Replaces the session's block-weight table: per network name the block ratios as written (12, 17, 20, 26 or 61
    /// values) and the elemental directives text. An empty list clears it. Applied by the next network update.
    /// </summary>
    public Task SetBlockWeightsAsync(IReadOnlyList<(string Name, IReadOnlyList<double> Weights, string Elemental)> table,
        CancellationToken ct = default) => CallAsync(m =>
    {
        var items = table.Select(t => (PyObject)new PyTuple([
            new PyString(t.Name), new PyList(t.Weights.Select(w => (PyObject)new PyFloat(w)).ToArray()), new PyString(t.Elemental),
        ])).ToArray();
        Invoke(m, "gen_set_block_weights", new PyList(items)).Dispose();
        return true;
    }, ct);

    /// <summary>
    /// Warnings for networks whose layers failed to merge as the model is patched now (A1111 leaves such layers as they
    /// were and only logs it): one line per network naming its file, the number of layers and the first failing key.
    /// </summary>
    public Task<IReadOnlyList<string>> GetLayerWarningsAsync(CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "gen_layer_errors");
        var list = new List<string>();
        long total = r.Length();
        for (long i = 0; i < total; i++)
        {
            using (var item = r[(int)i])
            {
                long n = Get<long>(item, "layers");
                list.Add($"LoRA '{Get<string>(item, "name")}' ({Get<string>(item, "file")}): {n} layer{(n == 1 ? "" : "s")} could not be merged and {(n == 1 ? "was" : "were")} left unchanged; first: {Get<string>(item, "first")}");
            }
        }
        return (IReadOnlyList<string>)list;
    }, ct);

    /// <summary>Layers patched and seconds spent patching by the loaded session (cumulative); (0, 0) without one.</summary>
    public Task<(long Layers, double Seconds)> GetPatchTotalsAsync(CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "gen_patch_totals");
        return (Get<long>(r, "layers"), Get<double>(r, "seconds"));
    }, ct);
}
