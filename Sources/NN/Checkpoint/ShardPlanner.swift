/// How a state dict is split into shard files: huggingface_hub's
/// `split_state_dict_into_shards_factory`, step for step.
public struct ShardPlan: Sendable, Equatable {
    /// Tensor names per shard, in file order (shard 1 first).
    public let shards: [[String]]
    /// Sum of the sizes, each storage counted once.
    public let totalSize: Int

    public var isSharded: Bool { shards.count > 1 }
}

public enum ShardPlanner {
    /// One state-dict entry: its name, its size (the storage's byte count), and an id
    /// shared by entries viewing the same storage (nil: never shared).
    public struct Item: Sendable {
        public let name: String
        public let byteCount: Int
        public let storageID: ObjectIdentifier?

        public init(name: String, byteCount: Int, storageID: ObjectIdentifier? = nil) {
            self.name = name
            self.byteCount = byteCount
            self.storageID = storageID
        }
    }

    /// Greedy in `items` order, no bin packing: a shard is closed when the next tensor
    /// would take it over `maxShardSize`; a tensor bigger than the maximum gets its own
    /// shard, appended before the shard still being filled; entries sharing a storage go
    /// to the first one's shard and count once. One shard means no index.
    public static func plan(_ items: [Item], maxShardSize: Int) -> ShardPlan {
        var groups: [ObjectIdentifier: [String]] = [:]
        var groupOrder: [ObjectIdentifier] = []
        var shards: [[String]] = []
        var current: [String] = []
        var currentSize = 0
        var totalSize = 0
        for item in items {
            if let id = item.storageID {
                if groups[id] != nil { groups[id, default: []].append(item.name); continue }
                groups[id] = [item.name]
                groupOrder.append(id)
            }
            if item.byteCount > maxShardSize {
                totalSize += item.byteCount
                shards.append([item.name])
                continue
            }
            if currentSize + item.byteCount > maxShardSize {
                shards.append(current)
                current = []
                currentSize = 0
            }
            current.append(item.name)
            currentSize += item.byteCount
            totalSize += item.byteCount
        }
        if !current.isEmpty { shards.append(current) }
        // Later views of a storage join the shard of its first view.
        for id in groupOrder {
            guard let names = groups[id], names.count > 1, let first = names.first,
                  let s = shards.firstIndex(where: { $0.contains(first) }) else { continue }
            shards[s].append(contentsOf: names.dropFirst())
        }
        if shards.count <= 1 { return ShardPlan(shards: [items.map(\.name)], totalSize: totalSize) }
        return ShardPlan(shards: shards, totalSize: totalSize)
    }
}
