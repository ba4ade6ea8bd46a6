using System.Globalization;

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

    /// <summary>The list row: alias, then the trigger words when there are any.</summary>
    public override string ToString() => string.IsNullOrWhiteSpace(ActivationText) ? Alias : $"{Alias}  ({ActivationText.Trim()})";

    /// <summary>Incremental search: every space-separated word of <paramref name="query"/> occurs in the alias or the trigger words.</summary>
    public bool Matches(string query) =>
        query.Split(' ', StringSplitOptions.RemoveEmptyEntries).All(word =>
            Alias.Contains(word, StringComparison.OrdinalIgnoreCase)
            || (ActivationText?.Contains(word, StringComparison.OrdinalIgnoreCase) ?? false));
}
