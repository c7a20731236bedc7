namespace MessageQueue;

/// <summary>
/// Relations between two topic patterns (<c>*</c> one word, <c>#</c> any number), for authorizing subscriptions:
/// whether one covers the other, and whether two can match a common event.
/// </summary>
internal static class TopicPatterns
{
    /// <summary>
    /// Whether every event <paramref name="filter"/> matches, <paramref name="pattern"/> matches too. Conservative where
    /// <paramref name="filter"/> has a <c>#</c> that <paramref name="pattern"/> does not meet with a <c>#</c> of its own:
    /// the answer is then "no", so a doubtful subscription is denied, never allowed.
    /// </summary>
    public static bool Covers(string pattern, string filter)
    {
        string[] a = pattern.Split('.');
        string[] b = filter.Split('.');
        var memo = new Dictionary<(int, int), bool>();
        return Cover(0, 0);

        bool Cover(int i, int j)
        {
            if (memo.TryGetValue((i, j), out bool known))
            {
                return known;
            }

            bool result;
            if (i == a.Length)
            {
                result = j == b.Length;
            }
            else if (a[i] == "#")
            {
                result = Cover(i + 1, j) || (j < b.Length && Cover(i, j + 1));
            }
            else if (j == b.Length || b[j] == "#")
            {
                result = false;
            }
            else
            {
                result = (a[i] == "*" || (b[j] != "*" && string.Equals(a[i], b[j], StringComparison.Ordinal))) && Cover(i + 1, j + 1);
            }

            memo[(i, j)] = result;
            return result;
        }
    }

    /// <summary>Whether some event matches both patterns.</summary>
    public static bool Overlap(string first, string second)
    {
        string[] a = first.Split('.');
        string[] b = second.Split('.');
        var memo = new Dictionary<(int, int), bool>();
        return Meet(0, 0);

        bool Meet(int i, int j)
        {
            if (memo.TryGetValue((i, j), out bool known))
            {
                return known;
            }

            bool result;
            if (i == a.Length && j == b.Length)
            {
                result = true;
            }
            else if (i < a.Length && a[i] == "#")
            {
                result = Meet(i + 1, j) || (j < b.Length && Meet(i, j + 1));
            }
            else if (j < b.Length && b[j] == "#")
            {
                result = Meet(i, j + 1) || (i < a.Length && Meet(i + 1, j));
            }
            else if (i == a.Length || j == b.Length)
            {
                result = false;
            }
            else
            {
                result = (a[i] == "*" || b[j] == "*" || string.Equals(a[i], b[j], StringComparison.Ordinal)) && Meet(i + 1, j + 1);
            }

            memo[(i, j)] = result;
            return result;
        }
    }
}
