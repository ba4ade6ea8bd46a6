using System.Text.Json.Nodes;

namespace LoraBridge.Engine;

/// <summary>The JSON an encode call with embeddings sends to Python (<c>lorabridge.embeddings.encode_request</c>).</summary>
public static class EmbeddingRequest
{
    /// <summary><c>{"ids": [text][chunk][77], "weights": …, "fixes": [text][chunk][[offset, key, path]]}</c>.</summary>
    public static JsonObject Build(IReadOnlyList<IReadOnlyList<TokenChunk>> texts)
    {
        JsonArray PerChunk(Func<TokenChunk, JsonArray> make) =>
            new(texts.Select(t => (JsonNode)new JsonArray(t.Select(c => (JsonNode)make(c)).ToArray())).ToArray());
        return new JsonObject
        {
            ["ids"] = PerChunk(c => new JsonArray(c.Ids.Select(i => (JsonNode)i).ToArray())),
            ["weights"] = PerChunk(c => new JsonArray(c.Weights.Select(w => (JsonNode)w).ToArray())),
            ["fixes"] = PerChunk(c => new JsonArray((c.Fixes ?? []).Select(f => (JsonNode)new JsonArray(f.Offset, f.Key, f.Path)).ToArray())),
        };
    }

    /// <summary><see cref="Build"/> as text.</summary>
    public static string Json(IReadOnlyList<IReadOnlyList<TokenChunk>> texts) => Build(texts).ToJsonString();
}
