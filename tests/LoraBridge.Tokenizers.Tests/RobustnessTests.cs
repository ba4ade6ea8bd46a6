namespace LoraBridge.Tokenizers.Tests;

public class RobustnessTests
{
    // Random mixes of the characters the normaliser treats specially; the tokenizer must never throw and every id
    // must be a vocabulary id. Fixed seed so a failure reproduces.
    [SharedFact]
    public void RandomTextAlwaysEncodesToVocabularyIds()
    {
        string alphabet = "aZ'sS<|>&#;x0\u0130\u03A3\u0301\u00A0\u2028\u001C\u0085 \t\n\uD83D\uDE00\uD800\u017F\u212A,()[]:BREAK";
        var rng = new Random(1234);
        var clip = ClipData.Clip;
        for (int i = 0; i < 3000; i++)
        {
            var chars = new char[rng.Next(0, 40)];
            for (int k = 0; k < chars.Length; k++) chars[k] = alphabet[rng.Next(alphabet.Length)];
            var text = new string(chars);
            var ids = clip.Encode(text);
            Assert.All(ids, id => Assert.InRange(id, 0, clip.VocabularySize - 1));
            Assert.Equal(ids, clip.Encode(text)); // cached path gives the same result
        }
    }
}
