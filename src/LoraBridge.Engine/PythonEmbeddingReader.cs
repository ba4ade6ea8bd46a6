using LoraBridge.Models;
using LoraBridge.Python;

namespace LoraBridge.Engine;

/// <summary>Reads pickle and image embeddings through <c>lorabridge.embeddings</c> (restricted unpickler, no code runs).</summary>
public sealed class PythonEmbeddingReader(PythonBridge bridge) : IEmbeddingFileReader
{
    /// <inheritdoc />
    public async Task<IReadOnlyList<EmbeddingFileInfo>> DescribeAsync(IReadOnlyList<string> paths, CancellationToken ct)
    {
        var json = await bridge.DescribeEmbeddingFilesAsync(paths, ct).ConfigureAwait(false);
        var infos = EmbeddingFiles.ParseDescriptions(json);
        if (infos.Count != paths.Count) throw new InvalidOperationException($"{paths.Count} embedding files described as {infos.Count}");
        return infos;
    }
}
