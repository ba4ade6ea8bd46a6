using System.Text.RegularExpressions;

namespace LoraBridge.Models;

/// <summary>Directory walking in the order A1111's <c>walk_files</c> yields files, which decides which file wins a name collision.</summary>
public static partial class FileWalk
{
    /// <summary>
    /// Every file under <paramref name="root"/> (recursively, following links, hidden ones included as A1111's default
    /// <c>list_hidden_files</c> does) whose lowercase extension is in <paramref name="extensions"/>: folders in natural order of
    /// their full path, files in natural order within each folder. A missing root yields nothing.
    /// </summary>
    public static IEnumerable<string> Files(string root, IReadOnlyCollection<string> extensions, bool includeHidden = true)
    {
        if (!Directory.Exists(root)) return [];
        var options = new EnumerationOptions
        {
            RecurseSubdirectories = true,
            AttributesToSkip = 0,
            IgnoreInaccessible = true,
            ReturnSpecialDirectories = false,
        };
        var dirs = new List<string> { root };
        dirs.AddRange(Directory.EnumerateDirectories(root, "*", options));
        var sortedDirs = dirs.OrderBy(d => d, NaturalComparer.Instance).ToList();

        var result = new List<string>();
        foreach (var dir in sortedDirs)
        {
            if (!includeHidden && (dir.Contains("/.") || dir.Contains("\\.")))
                continue;
            IEnumerable<string> files;
            try
            {
                files = Directory.EnumerateFiles(dir, "*", new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = true });
            }
            catch (IOException)
            {
                continue;
            }
            foreach (var f in files.Select(Path.GetFileName).OrderBy(f => f!, NaturalComparer.Instance))
            {
                if (extensions.Contains(Path.GetExtension(f!).ToLowerInvariant()))
                    result.Add(Path.Combine(dir, f!));
            }
        }
        return result;
    }

    [GeneratedRegex(@"(\d+)")]
    private static partial Regex Digits();

    /// <summary>A1111's <c>natural_sort_key</c>: digit runs compare as numbers, other text case-insensitively.</summary>
    public sealed class NaturalComparer : IComparer<string>
    {
        /// <summary>The shared instance.</summary>
        public static readonly NaturalComparer Instance = new();

        /// <inheritdoc />
        public int Compare(string? x, string? y)
        {
            var a = Digits().Split(x ?? "");
            var b = Digits().Split(y ?? "");
            for (int i = 0; i < Math.Min(a.Length, b.Length); i++)
            {
                int c;
                // Regex.Split with a capture group alternates text and digit runs, so odd indices are numbers on both sides.
                if (i % 2 == 1)
                {
                    var na = System.Numerics.BigInteger.Parse(a[i]);
                    var nb = System.Numerics.BigInteger.Parse(b[i]);
                    c = na.CompareTo(nb);
                }
                else
                {
                    c = string.CompareOrdinal(a[i].ToLowerInvariant(), b[i].ToLowerInvariant());
                }
                if (c != 0) return c;
            }
            return a.Length.CompareTo(b.Length);
        }
    }
}
