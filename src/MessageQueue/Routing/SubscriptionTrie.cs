using System.Diagnostics;

namespace MessageQueue;

/// <summary>
/// A queue's subscriptions indexed by the words of their filters (the topic trie of RabbitMQ, the sublist of NATS), so
/// that routing an event name walks its words instead of testing every subscription: the cost grows with the depth of
/// the name, not with the number of subscriptions.
/// </summary>
/// <remarks>
/// <para>Each node has its literal words as children, found by a span of the event name (no substring is made), and at
/// most one <c>*</c> child and one <c>#</c> child. A subscription sits at the node where one of its filters ends.</para>
/// <para><c>#</c> takes zero or more words, so a walk goes on from a <c>#</c> node at every later word boundary. Each
/// <c>#</c> node remembers, per walk, the first boundary it was walked from; a later visit walks only the boundaries
/// before that one. So a name is walked at most once per node and word, however many <c>#</c> a filter has.</para>
/// <para>Changed and walked only under the owning queue's lock: the walk keeps its marks in the nodes and in the
/// subscriptions (<see cref="SubscriptionState{T}.RouteMark"/>), so nothing is allocated per walk.</para>
/// </remarks>
internal sealed class SubscriptionTrie<T>
{
    private readonly Lock _gate;
    private readonly Node _root = new();

    // Stamps one walk: a node or subscription marked with it was already visited or matched in this walk.
    private long _walk;

    /// <param name="queueGate">The owning queue's lock, held for every change and walk.</param>
    public SubscriptionTrie(Lock queueGate) => _gate = queueGate;

    /// <summary>Adds each of the subscription's filters.</summary>
    public void Add(SubscriptionState<T> subscription)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        foreach (TopicFilter filter in subscription.TopicFilters)
        {
            Node node = _root;
            foreach (string word in filter.Words)
            {
                node = node.Child(word);
            }

            (node.Here ??= []).Add(subscription);
        }
    }

    /// <summary>Removes each of the subscription's filters, and the nodes nothing needs any more.</summary>
    public void Remove(SubscriptionState<T> subscription)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        foreach (TopicFilter filter in subscription.TopicFilters)
        {
            Remove(_root, filter.Words, 0, subscription);
        }
    }

    /// <summary>
    /// Adds to <paramref name="matches"/> every subscription with a filter that matches <paramref name="eventName"/>
    /// (a valid event name), each once, in no particular order.
    /// </summary>
    public void Match(string eventName, List<SubscriptionState<T>> matches)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        _walk++;
        Walk(_root, eventName, 0, matches);
    }

    // Removes one occurrence of the subscription at the end of words[index..]; true when the node is left empty.
    private static bool Remove(Node node, string[] words, int index, SubscriptionState<T> subscription)
    {
        if (index == words.Length)
        {
            node.Here?.Remove(subscription);
        }
        else if (node.Find(words[index]) is { } child && Remove(child, words, index + 1, subscription))
        {
            node.Forget(words[index]);
        }

        return node.IsEmpty;
    }

    // start: where the next word of the name begins; past the end when no word is left.
    private void Walk(Node node, string name, int start, List<SubscriptionState<T>> matches)
    {
        if (node.Hash is { } hash)
        {
            WalkHash(hash, name, start, matches);
        }

        if (start > name.Length)
        {
            if (node.Here is { } here)
            {
                foreach (SubscriptionState<T> subscription in here)
                {
                    // A subscription whose filters match twice is routed to once.
                    if (subscription.RouteMark != _walk)
                    {
                        subscription.RouteMark = _walk;
                        matches.Add(subscription);
                    }
                }
            }

            return;
        }

        int dot = name.IndexOf('.', start);
        int end = dot < 0 ? name.Length : dot;
        if (node.Words is { } words && words.TryGetValue(name.AsSpan(start, end - start), out Node? child))
        {
            Walk(child, name, end + 1, matches);
        }

        if (node.Star is { } star)
        {
            Walk(star, name, end + 1, matches);
        }
    }

    // '#' takes zero or more words: go on from every word boundary from start to the end, except those this node was
    // already walked from in this walk.
    private void WalkHash(Node hash, string name, int start, List<SubscriptionState<T>> matches)
    {
        int stop = hash.WalkedIn == _walk ? hash.WalkedFrom : int.MaxValue;
        if (start >= stop)
        {
            return;
        }

        hash.WalkedIn = _walk;
        hash.WalkedFrom = start;
        for (int position = start; position < stop; )
        {
            // A '#' node has no '#' child ("#.#" is parsed as "#"), so this does not come back here.
            Walk(hash, name, position, matches);
            if (position > name.Length)
            {
                break;
            }

            int dot = name.IndexOf('.', position);
            position = dot < 0 ? name.Length + 1 : dot + 1;
        }
    }

    private sealed class Node
    {
        private Dictionary<string, Node>? _words;

        /// <summary>The literal words, looked up by a span of the event name.</summary>
        public Dictionary<string, Node>.AlternateLookup<ReadOnlySpan<char>>? Words { get; private set; }

        public Node? Star { get; private set; }

        public Node? Hash { get; private set; }

        /// <summary>The subscriptions with a filter that ends here, once per such filter.</summary>
        public List<SubscriptionState<T>>? Here { get; set; }

        /// <summary>For a '#' node: the walk that last reached it, and the first word boundary that walk went on from.</summary>
        public long WalkedIn { get; set; }

        public int WalkedFrom { get; set; }

        public bool IsEmpty => (_words is null || _words.Count == 0) && Star is null && Hash is null && (Here is null || Here.Count == 0);

        public Node Child(string word)
        {
            switch (word)
            {
                case "*":
                    return Star ??= new Node();
                case "#":
                    return Hash ??= new Node();
                default:
                    if (_words is null)
                    {
                        // The default comparer: ordinal, and faster than StringComparer.Ordinal (it hashes without randomizing
                        // until it sees collisions).
                        _words = new Dictionary<string, Node>();
                        Words = _words.GetAlternateLookup<ReadOnlySpan<char>>();
                    }

                    if (!_words.TryGetValue(word, out Node? child))
                    {
                        child = new Node();
                        _words.Add(word, child);
                    }

                    return child;
            }
        }

        public Node? Find(string word) => word switch
        {
            "*" => Star,
            "#" => Hash,
            _ => _words?.GetValueOrDefault(word),
        };

        public void Forget(string word)
        {
            switch (word)
            {
                case "*":
                    Star = null;
                    break;
                case "#":
                    Hash = null;
                    break;
                default:
                    _words?.Remove(word);
                    break;
            }
        }
    }
}
