using System.Text.Json.Nodes;

namespace LoraBridge.Engine;

/// <summary>The JSON an encode call with embeddings sends to Python (<c>lorabridge.embeddings.encode_request</c>).</summary>
public static class EmbeddingRequest
{
    /// <summary><c>{"ids": [text][chunk][77], "weights": …, "fixes": [text][chunk][[offset, key, path]]}</c>.</summary>
    public static JsonObject Build(IReadOnlyList<IReadOnlyList<TokenChunk>> texts) => new()
    {
        ["ids"] = PerChunk(texts, c => new JsonArray(c.Ids.Select(i => (JsonNode)i).ToArray())),
        ["weights"] = PerChunk(texts, c => new JsonArray(c.Weights.Select(w => (JsonNode)w).ToArray())),
        ["fixes"] = Fixes(texts),
    };

    /// <summary>Only the <c>fixes</c> part, <c>[text][chunk][[offset, key, path]]</c>, as text (SDXL's encode call takes ids as lists).</summary>
    public static string FixesJson(IReadOnlyList<IReadOnlyList<TokenChunk>> texts) => Fixes(texts).ToJsonString();

    private static JsonArray Fixes(IReadOnlyList<IReadOnlyList<TokenChunk>> texts) =>
        PerChunk(texts, c => new JsonArray((c.Fixes ?? []).Select(f => (JsonNode)new JsonArray(f.Offset, f.Key, f.Path)).ToArray()));

    private static JsonArray PerChunk(IReadOnlyList<IReadOnlyList<TokenChunk>> texts, Func<TokenChunk, JsonArray> make) =>
        new(texts.Select(t => (JsonNode)new JsonArray(t.Select(c => (JsonNode)make(c)).ToArray())).ToArray());

    /// <summary><see cref="Build"/> as text.</summary>
    public static string Json(IReadOnlyList<IReadOnlyList<TokenChunk>> texts) => Build(texts).ToJsonString();
}
