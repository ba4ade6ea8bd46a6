namespace LoraBridge.Tokenizers;

/// <summary>A textual-inversion embedding as the chunker sees it: its name and how many placeholder tokens it takes.</summary>
/// <param name="Name">The registered name (what "TI hashes" and the fixes name).</param>
/// <param name="Vectors">Placeholder tokens it occupies in a chunk (A1111's <c>embedding.vectors</c>).</param>
/// <param name="Tag">The caller's object behind the name (file, vectors); the chunker only carries it.</param>
public sealed record TokenEmbedding(string Name, int Vectors, object? Tag = null);

/// <summary>
/// A1111 v1.10.1's <c>EmbeddingDatabase.ids_lookup</c>: registered embeddings keyed by the first token id of their
/// name, each list sorted by token length (longest first, stable), so a prompt is matched on token ids, longest name
/// first (<c>find_embedding_at_position</c>).
/// </summary>
public sealed class EmbeddingLookup
{
    private readonly Dictionary<int, List<(int[] Ids, TokenEmbedding Embedding)>> _byFirst = new();
    private readonly Dictionary<string, TokenEmbedding> _byName = new(StringComparer.Ordinal);

    /// <summary>Registered names (the last registration of each), in first-registration order.</summary>
    public IReadOnlyDictionary<string, TokenEmbedding> ByName => _byName;

    /// <summary>Every first id with its candidates in matching order (for the database dump and tests).</summary>
    public IEnumerable<(int FirstId, IReadOnlyList<(int[] Ids, TokenEmbedding Embedding)> Entries)> Entries =>
        _byFirst.OrderBy(kv => kv.Key).Select(kv => (kv.Key, (IReadOnlyList<(int[], TokenEmbedding)>)kv.Value));

    /// <summary>
    /// A1111's <c>register_embedding_by_name</c>: a name registered again replaces its old entry (which leaves the
    /// list; the new one goes to the end before the stable sort by length).
    /// </summary>
    /// <param name="ids">The name's token ids (no BOS/EOS); must not be empty.</param>
    /// <param name="embedding">The embedding.</param>
    /// <exception cref="ArgumentException">The name has no tokens (A1111 fails on <c>ids[0]</c> too).</exception>
    public void Register(IReadOnlyList<int> ids, TokenEmbedding embedding)
    {
        if (ids.Count == 0) throw new ArgumentException($"the name \"{embedding.Name}\" has no tokens", nameof(ids));
        int first = ids[0];
        if (!_byFirst.TryGetValue(first, out var list)) _byFirst[first] = list = [];
        if (_byName.ContainsKey(embedding.Name)) list.RemoveAll(e => e.Embedding.Name == embedding.Name);
        list.Add((ids.ToArray(), embedding));
        // List.Sort is not stable; insertion order breaks ties as Python's sorted does.
        var sorted = list.Select((e, i) => (e, i)).OrderByDescending(x => x.e.Ids.Length).ThenBy(x => x.i).Select(x => x.e).ToList();
        list.Clear();
        list.AddRange(sorted);
        _byName[embedding.Name] = embedding;
    }

    /// <summary>A1111's <c>find_embedding_at_position</c>: the first candidate whose ids start at <paramref name="offset"/>.</summary>
    /// <returns>The embedding and how many prompt tokens its name covers, or null.</returns>
    public (TokenEmbedding Embedding, int Length)? Find(IReadOnlyList<int> tokens, int offset)
    {
        if (!_byFirst.TryGetValue(tokens[offset], out var list)) return null;
        foreach (var (ids, embedding) in list)
        {
            if (offset + ids.Length > tokens.Count) continue;
            bool same = true;
            for (int k = 1; k < ids.Length && same; k++) same = tokens[offset + k] == ids[k];
            if (same) return (embedding, ids.Length);
        }
        return null;
    }

    /// <summary>True when no embedding is registered (the chunker then behaves exactly as without a lookup).</summary>
    public bool IsEmpty => _byName.Count == 0;
}
