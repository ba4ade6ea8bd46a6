using LoraBridge.Prompting;

namespace LoraBridge.Tui;

/// <summary>
/// Maps a plan error's position to an offset in the prompt as the user wrote it. Emphasis errors are reported by the
/// planner as offsets in the scheduled text (the text after <c>[a:b:N]</c> picked one side and the LoRA tags were
/// removed); pointing the caret there would point at the wrong prompt column.
/// </summary>
public static class PromptCaret
{
    private const string ScheduledMarker = " (in scheduled text \"";

    /// <summary>The prompt offset of <paramref name="error"/> in <paramref name="plan"/>'s prompt.</summary>
    public static int PromptOffset(PromptPlan plan, PromptError error)
    {
        var marker = error.Message.LastIndexOf(ScheduledMarker, StringComparison.Ordinal);
        if (marker < 0 || !error.Message.EndsWith("\")", StringComparison.Ordinal)) return Math.Clamp(error.Position, 0, plan.Prompt.Length);
        var scheduled = error.Message[(marker + ScheduledMarker.Length)..^2];
        // The scheduled text is read from the tag-free prompt, one AND part at a time.
        var en = ExtraNetworks.Parse(plan.Prompt);
        foreach (var part in Multicond.Split(en.Prompt))
        {
            if (!TryAlign(part.Text, scheduled, error.Position, out var inPart)) continue;
            return Math.Clamp(en.ToOriginalOffset(part.Start + inPart), 0, plan.Prompt.Length);
        }
        return Math.Clamp(error.Position, 0, plan.Prompt.Length);
    }

    /// <summary>The error with its position moved to the prompt and the scheduled-text note kept in the message.</summary>
    public static PromptError InPrompt(PromptPlan plan, PromptError error) => error with { Position = PromptOffset(plan, error) };

    /// <summary>
    /// Finds <paramref name="scheduled"/> as a subsequence of <paramref name="source"/> (scheduling only drops characters:
    /// brackets, the other side of an edit, step numbers) and returns where its character <paramref name="index"/> lies.
    /// Matching runs from both ends so that characters after the error anchor it to its real place, not the earliest
    /// equal character.
    /// </summary>
    public static bool TryAlign(string source, string scheduled, int index, out int offset)
    {
        offset = -1;
        // Greedy from the left for the prefix up to the error, greedy from the right for the suffix after it; the error
        // character sits between them.
        var left = new int[scheduled.Length];
        int s = 0;
        for (int i = 0; i < scheduled.Length; i++)
        {
            while (s < source.Length && source[s] != scheduled[i]) s++;
            if (s == source.Length) return false;
            left[i] = s++;
        }
        if (index >= scheduled.Length) { offset = scheduled.Length == 0 ? source.Length : Math.Min(source.Length, left[^1] + 1 + (index - scheduled.Length)); return true; }
        int r = source.Length - 1, bound = source.Length;
        for (int i = scheduled.Length - 1; i > index; i--)
        {
            while (r >= 0 && source[r] != scheduled[i]) r--;
            if (r < 0) return false;
            bound = r--;
        }
        // Latest occurrence of the error character before the suffix's anchor and not before the prefix's match.
        int floor = index == 0 ? 0 : left[index - 1] + 1;
        for (int k = bound - 1; k >= floor; k--)
            if (source[k] == scheduled[index]) { offset = k; return true; }
        offset = left[index];
        return true;
    }
}
