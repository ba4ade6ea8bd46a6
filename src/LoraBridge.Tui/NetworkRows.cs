using System.Globalization;
using LoraBridge.Models;

namespace LoraBridge.Tui;

/// <summary>
/// One textual-inversion embedding as the network panel lists it (A1111's Textual Inversion tab lists loaded and
/// skipped embeddings alike; a click inserts the name).
/// </summary>
/// <param name="Name">Name prompts use; empty for a file that could not be read.</param>
/// <param name="Vectors">Placeholder tokens (vectors), when known.</param>
/// <param name="Status">loaded, skipped or error (<see cref="EmbeddingReports.List"/>).</param>
/// <param name="Reason">Why it was skipped or failed (or why a loaded one will fail); null when usable.</param>
/// <param name="File">File relative to its embeddings folder.</param>
public sealed record EmbeddingCard(string Name, int? Vectors, string Status, string? Reason, string File)
{
    /// <summary>The cards of a database: loaded (A1111's order), then skipped, then unreadable files.</summary>
    public static IReadOnlyList<EmbeddingCard> From(EmbeddingDatabase db) =>
        [.. EmbeddingReports.List(db).Select(r => new EmbeddingCard(r.Name, r.Vectors, r.Status, r.Reason, r.File))];

    /// <summary>What Enter inserts: the name (nothing for a file that could not be read).</summary>
    public string Snippet => Name;

    /// <summary>True when the embedding will not act in a prompt (skipped, unreadable, or vectors that do not fit).</summary>
    public bool Unusable => Reason is not null;

    /// <summary>Everything the card knows, on one line (the status line shows it for the selected row).</summary>
    public string Details =>
        $"{(Name.Length > 0 ? Name : "(unreadable)")} · {(Vectors is { } v ? v.ToString(CultureInfo.InvariantCulture) + " vectors" : "vectors ?")} · {File} · {Status}"
        + (Reason is null ? "" : ": " + Reason) + (Name.Length > 0 ? " · Enter inserts " + Name : "");

    /// <summary>Incremental search: every word occurs in the name or the file.</summary>
    public bool Matches(string query) =>
        query.Split(' ', StringSplitOptions.RemoveEmptyEntries).All(word =>
            Name.Contains(word, StringComparison.OrdinalIgnoreCase) || File.Contains(word, StringComparison.OrdinalIgnoreCase));
}

/// <summary>
/// Column layout of the network panel's rows. Each column is cut on its own (with "…"), so a long name or trigger
/// text never pushes the type, rank and family out of a narrow panel (the right column is 24 cells at 80×24).
/// </summary>
public static class NetworkRows
{
    /// <summary>First cell of a row whose LoRA was made for another family than the checkpoint (or an unusable embedding).</summary>
    public const char MismatchMark = '!';

    /// <summary><paramref name="text"/> in exactly <paramref name="width"/> cells: padded, or cut with "…".</summary>
    public static string Fit(string text, int width) =>
        width <= 0 ? "" : text.Length <= width ? text.PadRight(width) : text[..(width - 1)] + "…";

    /// <summary>
    /// LoRA rows: mismatch mark, name, type, rank, family, triggers. The type, rank and family columns are as wide as
    /// their longest value (capped at 5); names are kept whole when they fit, else get three quarters of the rest (at
    /// least 8 cells); the triggers get what is left (dropped below 6 cells).
    /// </summary>
    /// <param name="cards">The rows to show.</param>
    /// <param name="checkpoint">The current checkpoint's family (Unknown: no marks).</param>
    /// <param name="width">Cells per row.</param>
    public static IReadOnlyList<string> Loras(IReadOnlyList<LoraCard> cards, BaseFamily checkpoint, int width)
    {
        if (cards.Count == 0) return [];
        string Type(LoraCard c) => c.NetworkType == "unknown" ? "?" : c.NetworkType;
        string Rank(LoraCard c) => c.Rank.Length > 0 ? c.Rank : "-";
        int typeW = Math.Min(5, cards.Max(c => Type(c).Length));
        int rankW = Math.Min(5, cards.Max(c => Rank(c).Length));
        int familyW = cards.Max(c => LoraCard.FamilyText(c.Family).Length);
        int nameMax = cards.Max(c => c.Alias.Length);
        bool triggers = cards.Any(c => c.Triggers.Length > 0);
        int rest = Math.Max(0, width - 1 - (typeW + 1) - (rankW + 1) - (familyW + 1));
        int triggerMax = triggers ? cards.Max(c => c.Triggers.Length) : 0;
        // Whole names first (they are what the user looks for); the triggers get what is left, or are dropped below
        // 6 cells (the status line shows them for the selected row).
        int nameW = !triggers || nameMax + 1 + triggerMax <= rest ? Math.Min(nameMax, rest) : Math.Min(nameMax, Math.Max(8, rest * 3 / 4));
        int triggerW = triggers ? Math.Min(triggerMax, rest - nameW - 1) : 0;
        if (triggerW < 6) { triggerW = 0; nameW = Math.Min(nameMax, rest); }
        return [.. cards.Select(c =>
        {
            var row = (c.MismatchWith(checkpoint) ? MismatchMark : ' ') + Fit(c.Alias, Math.Max(nameW, 1)) + " " + Fit(Type(c), typeW)
                + " " + Fit(Rank(c), rankW) + " " + Fit(LoraCard.FamilyText(c.Family), familyW);
            if (triggerW > 0) row += " " + Fit(c.Triggers, triggerW);
            return Fit(row.TrimEnd(), width).TrimEnd();
        })];
    }

    /// <summary>Embedding rows: mark for unusable ones, name (the file for unreadable ones), vectors, status.</summary>
    public static IReadOnlyList<string> Embeddings(IReadOnlyList<EmbeddingCard> cards, int width)
    {
        if (cards.Count == 0) return [];
        static string Vec(EmbeddingCard c) => c.Vectors is { } v ? v.ToString(CultureInfo.InvariantCulture) + "v" : "?";
        static string Shown(EmbeddingCard c) => c.Name.Length > 0 ? c.Name : c.File;
        int vecW = cards.Max(c => Vec(c).Length);
        int statusW = cards.Max(c => c.Status.Length);
        int nameW = Math.Min(cards.Max(c => Shown(c).Length), Math.Max(1, width - 1 - (vecW + 1) - (statusW + 1)));
        return [.. cards.Select(c =>
            Fit(((c.Unusable ? MismatchMark : ' ') + Fit(Shown(c), nameW) + " " + Vec(c).PadLeft(vecW) + " " + c.Status).TrimEnd(), width).TrimEnd())];
    }
}
