using System.Globalization;
using LoraBridge.Models;

namespace LoraBridge.Tui;

/// <summary>
/// One LoRA as the list offers it: what A1111's card click inserts comes from the alias and the <c>name.json</c>
/// sidecar's preferred weight and activation text.
/// </summary>
/// <param name="Alias">Name written into prompts.</param>
/// <param name="PreferredWeight">Sidecar <c>preferred weight</c>; null or 0 means the default multiplier (1).</param>
/// <param name="ActivationText">Sidecar <c>activation text</c> (trigger words), or null.</param>
public sealed record LoraCard(string Alias, double? PreferredWeight = null, string? ActivationText = null)
{
    /// <summary>A card with no sidecar values.</summary>
    public static implicit operator LoraCard(string alias) => new(alias);

    /// <summary>
    /// What a click inserts, as A1111's <c>ui_extra_networks_lora.py</c> builds it: <c>&lt;lora:ALIAS:W&gt;</c> with W the
    /// preferred weight when set (not 0), else the default multiplier, then a space and the activation text when set.
    /// </summary>
    public string Snippet
    {
        get
        {
            var weight = PreferredWeight is { } w && w != 0 ? w : 1.0;
            var tag = $"<lora:{Alias}:{weight.ToString("0.###", CultureInfo.InvariantCulture)}>";
            return string.IsNullOrWhiteSpace(ActivationText) ? tag : tag + " " + ActivationText.Trim();
        }
    }

    /// <summary>File-level network type from the keys (lora, locon, loha, lokr, dora, ...); "unknown" when not read.</summary>
    public string NetworkType { get; init; } = "unknown";

    /// <summary>Rank as text ("4", "2-8"); empty when unknown (pickled or unreadable files).</summary>
    public string Rank { get; init; } = "";

    /// <summary>Base-model family (sidecar, metadata, Civitai or key shapes); Unknown: never marked as a mismatch.</summary>
    public BaseFamily Family { get; init; }

    /// <summary>Civitai Helper's <c>trainedWords</c> (shown, and searched, when there is no activation text; never inserted, as in A1111).</summary>
    public IReadOnlyList<string> TrainedWords { get; init; } = [];

    /// <summary>The words shown as the card's triggers: the activation text, else Civitai's trained words; empty for none.</summary>
    public string Triggers => !string.IsNullOrWhiteSpace(ActivationText) ? ActivationText.Trim() : string.Join(", ", TrainedWords);

    /// <summary>True when both families are known and differ (A1111 would apply the LoRA only where its tensors fit).</summary>
    public bool MismatchWith(BaseFamily checkpoint) =>
        Family != BaseFamily.Unknown && checkpoint != BaseFamily.Unknown && Family != checkpoint;

    /// <summary>Everything the card knows, on one line (the status line shows it for the selected row).</summary>
    public string Details(BaseFamily checkpoint) =>
        $"{Alias} · {NetworkType}{(Rank.Length > 0 ? " rank " + Rank : "")} · {FamilyText(Family)}"
        + (MismatchWith(checkpoint) ? $" (! checkpoint is {FamilyText(checkpoint)})" : "")
        + (Triggers.Length > 0 ? " · triggers: " + Triggers : "")
        + " · Enter inserts " + Snippet;

    /// <summary>File name without extension (A1111's card name); the alias when not known.</summary>
    public string Name { get => _name ?? Alias; init => _name = value; }
    private readonly string? _name;

    /// <summary>The preview image the catalog found beside the file (A1111's <c>find_preview</c>), or null.</summary>
    public string? PreviewPath { get; init; }

    /// <summary>
    /// The card's text, one fact per line as the card panel shows it: name and alias, type, rank and family (the
    /// mismatch with <paramref name="checkpoint"/> marked), trigger words, and what Enter inserts.
    /// </summary>
    public string CardText(BaseFamily checkpoint) =>
        Alias + (Name != Alias ? $"  (file {Name})" : "") + "\n"
        + NetworkType + (Rank.Length > 0 ? " · rank " + Rank : "") + " · " + FamilyText(Family)
        + (MismatchWith(checkpoint) ? $"\n! made for {FamilyText(Family)}, checkpoint is {FamilyText(checkpoint)}" : "")
        + (Triggers.Length > 0 ? "\ntriggers: " + Triggers : "")
        + "\nEnter inserts " + Snippet;

    /// <summary>The family as the list shows it ("?" when unknown).</summary>
    public static string FamilyText(BaseFamily family) => family == BaseFamily.Unknown ? "?" : family.ToString();

    /// <summary>The card from the catalog's entry (alias as the catalog resolves it).</summary>
    public static LoraCard From(LoraEntry entry, string alias) =>
        new(alias, entry.User.PreferredWeight, entry.User.ActivationText)
        {
            NetworkType = entry.NetworkType, Rank = entry.RankText, Family = entry.Family, TrainedWords = entry.Civitai.TrainedWords,
            Name = entry.Name, PreviewPath = entry.PreviewPath,
        };

    /// <summary>The list row without a width limit: alias, then the trigger words when there are any.</summary>
    public override string ToString() => Triggers.Length == 0 ? Alias : $"{Alias}  ({Triggers})";

    /// <summary>Incremental search: every space-separated word of <paramref name="query"/> occurs in the alias or the trigger words.</summary>
    public bool Matches(string query) =>
        query.Split(' ', StringSplitOptions.RemoveEmptyEntries).All(word =>
            Alias.Contains(word, StringComparison.OrdinalIgnoreCase)
            || Triggers.Contains(word, StringComparison.OrdinalIgnoreCase));
}
